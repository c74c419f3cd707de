// ews dashboard: the map (Leaflet, no tiles) and small helpers. Loads nothing from another host.
"use strict";
(function () {
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.hasAttribute && target.hasAttribute("data-autosubmit")) { target.form.submit(); }
  });

  function getJSON(url, etag) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (r.status === 401 || r.status === 403 || r.redirected) { window.location.reload(); throw new Error("session"); }
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.json();
    });
  }

  function startMap(element) {
    var b = element.dataset.bounds.split(",").map(Number);
    var map = L.map(element, { preferCanvas: false, attributionControl: false, zoomSnap: 0.25 });
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
    var labels = { 0: element.dataset.labelNone, 1: element.dataset.label1, 2: element.dataset.label2, 3: element.dataset.label3 };
    var colours = { 0: "#d9d9d9", 1: "#f7d038", 2: "#f28c28", 3: "#d7301f" };
    var byCode = {};
    var areaKey = null;
    var areas = L.geoJSON(null, {
      interactive: false,
      style: function () { return { color: "#1f3b8c", weight: 2, fill: false, dashArray: "6 4" }; }
    });

    function style(level) {
      return { color: "#555", weight: 0.6, fillColor: colours[level] || colours[0], fillOpacity: level ? 0.8 : 0.25 };
    }

    function refresh() {
      getJSON(element.dataset.levels).then(function (data) {
        if (data.colours) { colours = data.colours; }
        Object.keys(byCode).forEach(function (code) {
          var layer = byCode[code], level = data.levels[code] || 0;
          if (layer.level !== level) {
            layer.level = level;
            layer.setStyle(style(level));
            layer.getElement().setAttribute("data-level", String(level));
            layer.setTooltipContent(layer.label + " · " + labels[level]);
          }
        });
        if (data.areas !== areaKey) {
          areaKey = data.areas;
          getJSON(element.dataset.warnings).then(function (geo) { areas.clearLayers(); areas.addData(geo); areas.bringToFront(); });
        }
        var stamp = document.getElementById("map-updated");
        if (stamp) { stamp.textContent = stamp.textContent.split(" ")[0] + " " + new Date().toLocaleTimeString(); }
        element.setAttribute("data-loaded", "1");
      }).catch(function (e) { console.warn(e); });
    }

    getJSON(element.dataset.villages).then(function (geo) {
      L.geoJSON(geo, {
        style: function () { return style(0); },
        onEachFeature: function (feature, layer) {
          var p = feature.properties;
          layer.level = 0;
          layer.label = p.name + " (" + p.code + ")";
          layer.bindTooltip(layer.label + " · " + labels[0], { sticky: true });
          byCode[p.code] = layer;
        }
      }).eachLayer(function (layer) {
        layer.addTo(map);
        var path = layer.getElement();
        path.setAttribute("data-code", layer.feature.properties.code);
        path.setAttribute("data-level", "0");
        path.classList.add("village");
      });
      areas.addTo(map);
      refresh();
      window.setInterval(refresh, 15000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("map");
    if (element && window.L) { startMap(element); }
  });
})();
