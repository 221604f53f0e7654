// The Usage tab. Draws the stacked chart from the JSON beside it (json_script) when the page loads and after every
// htmx swap, and tidies the filter form's request. Without JavaScript the table beside the chart holds the same
// figures and the form submits as it is.
(function () {
  "use strict";

  // The colours of the tool chips and report groups elsewhere in the app.
  var COLORS = {
    chatbot: "#4f6bed",
    image_speech: "#d6458f",
    chat: "#3b6fd8",
    image: "#d6458f",
    video: "#e8742a",
    speech: "#1aa179",
    music: "#7a5af5"
  };

  function total(items) {
    var sum = 0;
    items.forEach(function (item) { sum += item.parsed.y; });
    return "Total: " + sum.toLocaleString() + " credits";
  }

  function draw(root) {
    if (typeof window.Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart-data]").forEach(function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart-data"));
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
      var box = canvas.closest("[data-chart-box]");
      if (box) box.hidden = false;
      var panel = canvas.closest("section");
      var table = panel && panel.querySelector("details[data-chart-table]");
      if (table) table.open = false;  // the chart shows it; the table stays one click away
      new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: data.series.map(function (series) {
            return {
              label: series.label,
              data: series.values,
              backgroundColor: COLORS[series.key] || "#8a91a8",
              borderRadius: 2,
              maxBarThickness: 40
            };
          })
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { stacked: true, grid: { display: false }, ticks: { autoSkip: true, autoSkipPadding: 16, maxRotation: 0 } },
            y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Credits" } }
          },
          plugins: {
            legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
            tooltip: { callbacks: { footer: total } }
          }
        }
      });
    });
  }

  // htmx:load fires for the page once htmx starts and for every piece of content it swaps in.
  document.addEventListener("htmx:load", function (event) { draw(event.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () { if (!window.htmx) draw(document); });
  // The back button restores an earlier page from htmx's history cache: its canvas comes back blank.
  document.addEventListener("htmx:historyRestore", function () { draw(document); });
  // A chart whose canvas is about to be swapped out lets go of its observers.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (typeof window.Chart === "undefined" || !event.detail.target) return;
    event.detail.target.querySelectorAll("canvas").forEach(function (canvas) {
      var chart = window.Chart.getChart(canvas);
      if (chart) chart.destroy();
    });
  });

  // The filter form's request, as the URL people share: a date typed in makes the period custom, a new period
  // takes its default granularity, and what is not in force (dates of a named period, "all" choices) is left out.
  document.addEventListener("htmx:configRequest", function (event) {
    if (!event.detail.elt || event.detail.elt.id !== "usage-filters") return;
    var params = event.detail.parameters;
    var trigger = event.detail.triggeringEvent && event.detail.triggeringEvent.target;
    var id = trigger && trigger.id;
    if (id === "usage-start" || id === "usage-end") params.range = "custom";
    if (id === "usage-range") delete params.granularity;
    if (params.range !== "custom") {
      delete params.start;
      delete params.end;
    }
    ["workspace", "member", "tool", "model"].forEach(function (name) {
      if (params[name] === "") delete params[name];
    });
  });
})();
