/* sealq's line chart: a few lines of SVG, written for the console (no third-party code).
 *
 * SealqChart.lines(svg, series, options) draws each series ({name, points: [[x, y], ...]})
 * as a polyline, at the svg's displayed width, with a zero-based y axis, four grid lines, x ticks in
 * seconds or minutes, and (options.fillBetween = [upper, lower]) the area between two
 * series. Every call replaces what was drawn before.
 */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var PAD = {left: 48, right: 12, top: 10, bottom: 26};

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function niceMax(value) {
    if (value <= 0) { return 1; }
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var scaled = value / step;
    var nice = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10;
    return nice * step;
  }

  function label(value) {
    if (value >= 1e6) { return (value / 1e6).toFixed(1).replace(/\.0$/, "") + "M"; }
    if (value >= 1e3) { return (value / 1e3).toFixed(1).replace(/\.0$/, "") + "k"; }
    return String(Math.round(value * 100) / 100);
  }

  function duration(seconds) {
    if (seconds < 120) { return Math.round(seconds) + " s"; }
    if (seconds < 7200) { return Math.round(seconds / 60) + " min"; }
    return (seconds / 3600).toFixed(1) + " h";
  }

  function lines(svg, series, options) {
    options = options || {};
    // Drawn at the size it is shown, so text stays legible from a phone to a desk.
    var width = Math.max(280, Math.round(svg.clientWidth || svg.parentNode.clientWidth || 640));
    var height = width < 500 ? 200 : 240;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var plotW = width - PAD.left - PAD.right, plotH = height - PAD.top - PAD.bottom;
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); });
    });
    var xMax = Math.max(1, Math.max.apply(null, xs.concat([0])));
    var yMax = niceMax(Math.max.apply(null, ys.concat([0])));
    function px(x) { return PAD.left + (x / xMax) * plotW; }
    function py(y) { return PAD.top + plotH - (y / yMax) * plotH; }
    function path(points) {
      return points.map(function (p) { return px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1); })
        .join(" ");
    }

    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var grid = el("g", {"class": "grid"});
    for (var i = 0; i <= 4; i++) {
      var y = yMax * i / 4;
      grid.appendChild(el("line", {x1: PAD.left, x2: width - PAD.right, y1: py(y), y2: py(y)}));
      grid.appendChild(el("text", {x: PAD.left - 6, y: py(y) + 4, "text-anchor": "end"},
        label(y)));
    }
    for (var j = 0; j <= 4; j++) {
      var x = xMax * j / 4;
      var anchor = j === 0 ? "start" : j === 4 ? "end" : "middle";
      grid.appendChild(el("text", {x: px(x), y: height - 8, "text-anchor": anchor},
        duration(x)));
    }
    svg.appendChild(grid);

    if (options.fillBetween) {
      var upper = series[options.fillBetween[0]].points;
      var lower = series[options.fillBetween[1]].points.slice().reverse();
      if (upper.length > 1) {
        svg.appendChild(el("polygon", {"class": "area", points: path(upper.concat(lower))}));
      }
    }
    series.forEach(function (s) {
      var line = el("polyline", {"class": "line " + s.name, points: path(s.points)});
      line.setAttribute("data-series", s.name);
      svg.appendChild(line);
      var last = s.points[s.points.length - 1];
      if (last) {
        svg.appendChild(el("circle", {"class": "dot " + s.name, cx: px(last[0]), cy: py(last[1]),
          r: 3}));
      }
    });
  }

  window.SealqChart = {lines: lines, label: label, duration: duration};
}());
