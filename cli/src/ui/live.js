// gw502 web view: live updates. Every page is complete without this script;
// it only reloads the page, at most every few seconds, when the collector
// reports that an incident opened, changed its verdict or resolved.
(function () {
  "use strict";
  var badge = document.getElementById("live");
  if (!badge || !window.EventSource) {
    return;
  }
  var url = badge.getAttribute("data-live");
  function show(word, state) {
    badge.textContent = word;
    badge.className = "live " + state;
  }
  function start() {
    var source = new EventSource(url);
    var timer = null;
    source.onopen = function () {
      show("live", "on");
    };
    source.onerror = function () {
      show("reconnecting", "off");
    };
    source.addEventListener("incident", function () {
      if (timer !== null) {
        return;
      }
      show("updating", "on");
      timer = window.setTimeout(function () {
        window.location.reload();
      }, 2000);
    });
  }
  if (document.readyState === "complete") {
    start();
  } else {
    window.addEventListener("load", start);
  }
})();
