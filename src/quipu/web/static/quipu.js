// Quipu's web UI needs JavaScript for two things only: a live scan job panel, and a
// confirmation before an irreversible move. Every page works without it.
"use strict";

function confirmMoves(root) {
  root.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });
}

function livePanel(container) {
  var url = container.getAttribute("data-panel");
  var last = null;
  function refresh() {
    var panel = container.querySelector(".panel");
    if (!panel || panel.getAttribute("data-live") !== "true") {
      return;
    }
    // Leave the panel alone while a button in it has the focus or is being pressed.
    if (container.contains(document.activeElement) && document.activeElement.tagName === "BUTTON") {
      window.setTimeout(refresh, 1000);
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          throw new Error("the panel answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== last) {
          last = html;
          container.innerHTML = html; // rendered and escaped by the server's templates
          confirmMoves(container);
        }
        window.setTimeout(refresh, 1000);
      })
      .catch(function () {
        window.setTimeout(refresh, 5000);
      });
  }
  window.setTimeout(refresh, 1000);
}

document.addEventListener("DOMContentLoaded", function () {
  confirmMoves(document);
  var panel = document.getElementById("job-panel");
  if (panel) {
    livePanel(panel);
  }
});
