"""Small builders shared by tests (import as ``tests_support``; tests/ is on sys.path via rootdir conftest)."""

from __future__ import annotations

import csv
import http.server
import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

REPO = Path(__file__).resolve().parents[1]


def minimal_cap(
    polygon: str | tuple[str, ...],
    *,
    identifier: str = "2.49.0.1.360.0.2026.11.28.10.35.001",
    severity: str = "Severe",
    effective: str = "2026-11-28T17:00:00+07:00",
    expires: str = "2026-11-28T20:00:00+07:00",
    status: str = "Actual",
    msg_type: str = "Alert",
    references: str = "",
    certainty: str = "Observed",
    urgency: str = "Immediate",
    extra_alert: str = "",
) -> bytes:
    """A BMKG-shaped CAP 1.2 alert with one polygon (``"lat,lon lat,lon ..."``; empty: no area, for a Cancel)."""
    refs = f"\n  <references>{references}</references>" if references else ""
    polygons = (polygon,) if isinstance(polygon, str) else polygon
    shapes = "".join(f"<polygon>{p}</polygon>" for p in polygons if p)
    area = f"<area><areaDesc>Jawa Timur</areaDesc>{shapes}</area>" if shapes else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>cuaca.ekstrem@bmkg.go.id</sender>
  <sent>{effective}</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>{refs}{extra_alert}
  <info>
    <language>id</language>
    <category>Met</category>
    <event>Hujan Lebat disertai Petir</event>
    <urgency>{urgency}</urgency>
    <severity>{severity}</severity>
    <certainty>{certainty}</certainty>
    <effective>{effective}</effective>
    <expires>{expires}</expires>
    <headline>Hujan Lebat disertai Petir di Jawa Timur</headline>
    <description>Hujan lebat disertai petir, khususnya di WONOCOLO.</description>
    <web>https://nowcasting.bmkg.go.id/</web>
    {area}
  </info>
</alert>""".encode()


class Site(http.server.BaseHTTPRequestHandler):
    """A loopback site: serves ``files`` by path; a path in ``moved`` answers 302 with that Location."""

    files: ClassVar[dict[str, bytes]] = {}
    moved: ClassVar[dict[str, str]] = {}
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path in self.moved:
            self.send_response(302)
            self.send_header("Location", self.moved[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        return None


# One hand-written gempaterkini record: the 2021-12-14 Flores Sea event as BMKG listed it.
FLORES = {
    "Tanggal": "14 Des 2021",
    "Jam": "10:20:23 WIB",
    "DateTime": "2021-12-14T03:20:23+00:00",
    "Coordinates": "-7.59,122.24",
    "Lintang": "7.59 LS",
    "Bujur": "122.24 BT",
    "Magnitude": "7.4",
    "Kedalaman": "10 km",
    "Wilayah": "113 km BaratLaut LARANTUKA-NTT",
    "Potensi": "Potensi tsunami untuk diteruskan pada masyarakat",
}


def surabaya_region(
    folder: Path, jatim_villages_dir: Path, *, prefix: str = "+628999000", extra: Sequence[Sequence[str]] = ()
) -> Path:
    """Jawa Timur with one fictional subscriber per Surabaya kelurahan (``prefix`` + 5 digits) and a Tagana unit.

    The n-th kelurahan's subscriber reads English when n % 4 == 0 and uses WhatsApp when n % 3 == 0; ``extra``
    rows (phone, village_code, language, channel) are added as they are.
    """
    layer = jatim_villages_dir / "wilayah_boundaries_kel_35.78.geojson"
    codes = [f["properties"]["kode"] for f in json.loads(layer.read_text())["features"]]
    with (folder / "subscribers.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "village_code", "language", "channel", "consent_source", "consent_time"])
        for n, code in enumerate(codes):
            language, channel = "en" if n % 4 == 0 else "id", "whatsapp" if n % 3 == 0 else "sms"
            writer.writerow([f"{prefix}{n:05d}", code, language, channel, "test", "2026-01-01T00:00:00+07:00"])
        for row in extra:
            writer.writerow([*row, "test", "2026-01-01T00:00:00+07:00"])
    (folder / "tagana.csv").write_text(
        "unit_id,name,kabkota_code,kecamatan_codes,coordinator,phone,channel\n"
        f"TGN-3578,Tagana Kota Surabaya,35.78,,Koordinator,{prefix}9001,whatsapp\n"
    )
    region = (REPO / "regions" / "jawa-timur.yaml").read_text()
    region += f"subscribers: {folder / 'subscribers.csv'}\ntagana: {folder / 'tagana.csv'}\n"
    path = folder / "jawa-timur.yaml"
    path.write_text(region)
    return path
