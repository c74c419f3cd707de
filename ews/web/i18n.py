"""The dashboard's interface strings in Bahasa Indonesia and English.

A page's language is, in order: ``?lang=id|en`` (remembered in the ``ews_lang`` cookie), that cookie, the user's
profile language, Indonesian. A key without a translation is shown as the key itself, so a missing string is
visible on the page (and caught by the test that every key has both languages) rather than blank.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
COOKIE = "ews_lang"

STRINGS: Mapping[str, tuple[str, str]] = {
    # key: (Indonesian, English)
    "app.title": ("Pusat Komando Peringatan Dini", "Early Warning Command Center"),
    "nav.overview": ("Ringkasan", "Overview"),
    "nav.map": ("Peta", "Map"),
    "nav.warnings": ("Peringatan", "Warnings"),
    "nav.tagana": ("Tagana", "Tagana"),
    "nav.reports": ("Laporan", "Reports"),
    "nav.review": ("Tinjauan", "Review"),
    "nav.audit": ("Audit", "Audit"),
    "nav.logout": ("Keluar", "Log out"),
    "nav.language": ("English", "Bahasa Indonesia"),
    "role.viewer": ("pemantau", "viewer"),
    "role.operator": ("operator", "operator"),
    "role.analyst": ("analis", "analyst"),
    "role.admin": ("admin", "admin"),
    "live.every": ("diperbarui tiap 15 detik", "refreshed every 15 s"),
    "live.updated": ("diperbarui", "updated"),
    "region": ("Wilayah", "Region"),
    "regions.none": (
        "Akun Anda tidak mencakup wilayah mana pun yang dilayani server ini.",
        "Your account covers none of the regions this server serves.",
    ),
    "none": ("tidak ada", "none"),
    "level.0": ("tidak ada", "none"),
    "level.1": ("Waspada", "Waspada (advisory)"),
    "level.2": ("Siaga", "Siaga (watch)"),
    "level.3": ("Awas", "Awas (warning)"),
    # overview
    "overview.title": ("Ringkasan", "Overview"),
    "overview.degraded": ("TERDEGRADASI", "DEGRADED"),
    "overview.degraded_note": (
        "Data terakhir tidak lengkap: peringatan mungkin terlewat. Periksa masalah di bawah.",
        "The latest data are incomplete: warnings may be missed. See the problems below.",
    ),
    "overview.no_runs": ("Belum ada proses yang tercatat.", "No run recorded yet."),
    "overview.runs": ("Proses terakhir", "Latest runs"),
    "overview.source": ("Sumber", "Source"),
    "overview.status": ("Status", "Status"),
    "overview.finished": ("Selesai", "Finished"),
    "overview.problems": ("Masalah", "Problems"),
    "overview.counts": ("Angka", "Counts"),
    "overview.active_villages": ("Desa dengan peringatan aktif", "Villages under an active alert"),
    "overview.pending": ("Menunggu tinjauan", "Waiting for review"),
    "overview.subscribers": ("Pelanggan", "Subscribers"),
    "overview.opted_out": ("Berhenti berlangganan", "Opted out"),
    "overview.open_mobilisations": ("Mobilisasi terbuka", "Open mobilisations"),
    "overview.open_reports": ("Laporan terbuka", "Open reports"),
    "overview.overdue": ("terlambat", "overdue"),
    # warnings
    "warnings.title": ("Peringatan aktif", "Active warnings"),
    "warnings.none": ("Tidak ada peringatan aktif.", "No active warning."),
    "warnings.thread": ("Rangkaian", "Thread"),
    "warnings.event": ("Kejadian", "Event"),
    "warnings.level": ("Tingkat", "Level"),
    "warnings.villages": ("Desa", "Villages"),
    "warnings.expires": ("Berakhir", "Expires"),
    "warnings.timeline": ("Linimasa", "Timeline"),
    "warnings.latency": ("Latensi dari <sent> sumber", "Latency from the source's <sent>"),
    "warnings.deliveries": ("Pengiriman", "Deliveries"),
    "stage.sent": ("dikirim sumber", "source sent"),
    "stage.seen": ("dilihat ews", "seen by ews"),
    "stage.decided": ("disimpan", "stored"),
    "stage.queued": ("diantrekan", "queued"),
    "stage.handed": ("diserahkan", "handed over"),
    "stage.accepted": ("terkirim", "sent"),
    "stage.delivered": ("diterima", "delivered"),
    "delivery.queued": ("antre", "queued"),
    "delivery.sent": ("terkirim", "sent"),
    "delivery.delivered": ("diterima", "delivered"),
    "delivery.failed": ("gagal", "failed"),
    "delivery.opted_out": ("berhenti langganan", "opted out"),
    "latency.median": ("median", "median"),
    "latency.p90": ("90%", "90%"),
    "latency.worst": ("terburuk", "worst"),
    # map
    "map.title": ("Peta tingkat desa", "Village levels"),
    "map.legend": ("Keterangan", "Legend"),
    "map.warning_area": ("Area peringatan BMKG", "BMKG warning area"),
    "map.noscript": (
        "Peta memerlukan JavaScript; daftar desa ada di halaman Peringatan.",
        "The map needs JavaScript; the villages are listed on the Warnings page.",
    ),
    # Tagana
    "tagana.title": ("Papan Tagana", "Tagana board"),
    "tagana.none": ("Tidak ada mobilisasi.", "No mobilisation."),
    "tagana.unit": ("Unit", "Unit"),
    "tagana.status": ("Status", "Status"),
    "tagana.opened": ("Dibuka", "Opened"),
    "tagana.acknowledged": ("Dikonfirmasi", "Acknowledged"),
    "tagana.step": ("Langkah eskalasi", "Escalation step"),
    "tagana.mobilised": ("Dimobilisasi", "Mobilised"),
    "tagana.ended": ("Dibubarkan", "Stood down"),
    "tagana.next_page": ("Panggilan berikut", "Next page due"),
    "tagana.villages": ("desa", "villages"),
    "tagana.round": ("putaran", "round"),
    "tagana.acks": ("konfirmasi", "acks"),
    "tagana.events": ("Riwayat", "Events"),
    "tagana.ack": ("Konfirmasi untuk unit", "Acknowledge for the unit"),
    "tagana.acked": (
        "Mobilisasi {id} ({unit}) dikonfirmasi: {status}, {acks}/{quorum} konfirmasi.",
        "Mobilisation {id} ({unit}) acknowledged: {status}, {acks}/{quorum} acknowledgements.",
    ),
    "tagana.again": (
        "Anda sudah mengonfirmasi mobilisasi {id} ({unit}) putaran ini: {status}, {acks}/{quorum} konfirmasi.",
        "You acknowledged mobilisation {id} ({unit}) this round already: {status}, {acks}/{quorum} acknowledgements.",
    ),
    "tagana.nothing": (
        "Mobilisasi {id} tidak lagi terbuka untuk dikonfirmasi.",
        "Mobilisation {id} is no longer open to acknowledge.",
    ),
    "event.opened": ("dibuka", "opened"),
    "event.page": ("dipanggil", "paged"),
    "event.ack": ("konfirmasi", "acknowledged"),
    "event.mobilised": ("dimobilisasi", "mobilised"),
    "event.renotify": ("dipanggil ulang", "re-notified"),
    "event.update": ("diperbarui", "updated"),
    "event.stand-down": ("dibubarkan", "stood down"),
    "delivery.none": ("tanpa pesan", "no message"),
    "mob.open": ("terbuka", "open"),
    "mob.acknowledged": ("dikonfirmasi", "acknowledged"),
    "mob.escalated": ("dieskalasi", "escalated"),
    "mob.mobilised": ("dimobilisasi", "mobilised"),
    "mob.stood-down": ("dibubarkan", "stood down"),
    # reports
    "reports.title": ("Antrean laporan", "Report queue"),
    "reports.none": ("Tidak ada laporan.", "No report."),
    "reports.received": ("Diterima", "Received"),
    "reports.text": ("Isi", "Text"),
    "reports.category": ("Kategori", "Category"),
    "reports.unit": ("Unit tujuan", "Routed to"),
    "reports.village": ("Desa", "Village"),
    "reports.deadline": ("Tenggat", "Deadline"),
    "reports.status": ("Status", "Status"),
    "reports.overdue": ("TERLAMBAT", "OVERDUE"),
    "reports.set": ("Status laporan {id}: {status}.", "Report {id} is now {status}."),
    "reports.form.title": ("Catat laporan dari telepon", "Type in a report taken by phone"),
    "reports.form.village": ("Desa (kode atau nama; boleh kosong)", "Village (code or name; optional)"),
    "reports.form.village_hint": ("kode atau nama desa", "village code or name"),
    "reports.form.text": ("Isi laporan", "Report text"),
    "reports.form.label": ("Pelapor (boleh kosong)", "Reporter (optional)"),
    "reports.form.label_hint": ("telepon dari Pak RT", "call from the neighbourhood head"),
    "reports.form.phone": ("Nomor ponsel pelapor (boleh kosong)", "Reporter's mobile number (optional)"),
    "reports.form.phone_hint": (
        "Bila diisi, pelapor menerima kabar status lewat SMS. Nomor tidak pernah ditampilkan.",
        "If given, the reporter is told each status by SMS. The number is never shown.",
    ),
    "reports.form.phone_again": (
        "Nomor ponsel tidak ditampilkan ulang: ketik lagi bila pelapor perlu kabar lewat SMS.",
        "The mobile number is not shown again: type it again if the reporter should be told by SMS.",
    ),
    "reports.form.submit": ("Simpan dan teruskan", "Save and route"),
    "reports.form.taken": (
        "Laporan #{id} disimpan dan diteruskan ke {unit}; tenggat {deadline}.",
        "Report #{id} saved and routed to {unit}; deadline {deadline}.",
    ),
    "reports.form.joined": (
        "Laporan #{id} digabung ke laporan #{joined} yang masih terbuka ({unit}, tenggat {deadline}).",
        "Report #{id} joined to report #{joined}, still open ({unit}, deadline {deadline}).",
    ),
    "reports.form.again": (
        "Formulir ini sudah pernah dikirim; laporannya disimpan sekali saja.",
        "This form was sent before; its report is stored once.",
    ),
    "reports.form.sms": ("Pelapor menerima kabar status lewat SMS.", "The reporter is told each status by SMS."),
    "reports.form.bad_token": (
        "Formulir kedaluwarsa atau rusak: periksa isiannya lalu kirim lagi.",
        "The form expired or is damaged: check it and send it again.",
    ),
    "reports.form.text_empty": ("Isi laporan: wajib diisi.", "Report text: required."),
    "reports.form.text_long": ("Isi laporan: paling banyak {n} karakter.", "Report text: at most {n} characters."),
    "reports.form.label_long": ("Pelapor: paling banyak {n} karakter.", "Reporter: at most {n} characters."),
    "reports.form.phone_bad": (
        "Nomor ponsel pelapor: tidak terbaca; tulis nomor ponsel Indonesia (08…, +62…) atau kosongkan.",
        "Reporter's mobile number: unreadable; give an Indonesian mobile number (08…, +62…) or leave it empty.",
    ),
    "reports.form.region_unknown": ("Wilayah: pilih salah satu wilayah Anda.", "Region: choose one of your regions."),
    "reports.form.village_unknown": (
        "Desa: {village} tidak ada di {region}.",
        "Village: {village} is not in {region}.",
    ),
    "reports.form.village_not_yours": (
        "Desa: {village} di luar wilayah akun Anda.",
        "Village: {village} is outside your account's area.",
    ),
    "reports.form.village_ambiguous": (
        "Desa: ada beberapa desa bernama {village}; tulis kodenya ({codes}).",
        "Village: several villages are named {village}; give its code ({codes}).",
    ),
    "reports.form.village_needed": (
        "Desa: wajib diisi, karena akun Anda hanya mencakup sebagian {region}.",
        "Village: required, as your account covers only part of {region}.",
    ),
    "reports.form.refused": ("Laporan ditolak: {why}", "Report refused: {why}"),
    "report.received": ("diterima", "received"),
    "report.routed": ("diteruskan", "routed"),
    "report.in-progress": ("ditangani", "in progress"),
    "report.resolved": ("selesai", "resolved"),
    # review
    "review.title": ("Antrean tinjauan", "Review queue"),
    "review.none": ("Tidak ada yang menunggu tinjauan.", "Nothing waits for review."),
    "review.versions": ("Versi", "Versions"),
    "review.since": ("Menunggu sejak", "Waiting since"),
    "review.exercise": ("LATIHAN", "EXERCISE"),
    "review.approve": ("Setujui dan kirim", "Approve and send"),
    "review.reject": ("Tolak", "Reject"),
    "review.approved": (
        "{thread}: {n} versi disetujui, {queued} pesan diantrekan untuk dikirim.",
        "{thread}: {n} version(s) approved, {queued} message(s) queued to send.",
    ),
    "review.rejected": ("{thread}: {n} versi ditolak.", "{thread}: {n} version(s) rejected."),
    # audit
    "audit.title": ("Log audit", "Audit log"),
    "audit.none": ("Log audit kosong.", "The audit log is empty."),
    "audit.at": ("Waktu", "When"),
    "audit.actor": ("Siapa", "Who"),
    "audit.action": ("Tindakan", "Action"),
    "audit.subject": ("Objek", "Subject"),
    "error.refused": ("Ditolak", "Refused"),
}


def language_of(requested: str | None, remembered: str | None, profile: str | None) -> str:
    """The page language: the ``?lang=`` asked for, else the remembered one, else the profile's, else Indonesian."""
    for candidate in (requested, remembered, profile):
        if candidate in LANGUAGES:
            return str(candidate)
    return DEFAULT_LANGUAGE


def translator(language: str) -> Callable[..., str]:
    """``t(key, **fields)``: the string of ``key`` in ``language`` with ``{fields}`` filled in."""
    index = LANGUAGES.index(language) if language in LANGUAGES else 0

    def t(key: str, **fields: object) -> str:
        pair = STRINGS.get(key)
        text = pair[index] if pair else key
        return text.format(**fields) if fields else text

    return t
