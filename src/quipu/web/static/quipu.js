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

// A keyboard user's place survives a refresh: the same link gets the focus back.
function focusKey(container) {
  var element = document.activeElement;
  if (!element || !container.contains(element)) {
    return null;
  }
  return element.tagName + "|" + (element.getAttribute("href") || "") + "|" + element.textContent;
}

function refocus(container, key) {
  if (key === null) {
    return;
  }
  container.querySelectorAll("a, button").forEach(function (element) {
    if (focusKey(container) === null && element.tagName + "|" + (element.getAttribute("href") || "") + "|" + element.textContent === key) {
      element.focus();
    }
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
          var focused = focusKey(container);
          container.innerHTML = html; // rendered and escaped by the server's templates
          confirmMoves(container);
          refocus(container, focused);
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

// A list that is fetched again every few seconds (the scanners, online or offline): the
// element names its fragment's URL in data-live-list and the pause in data-every (ms).
function liveList(container) {
  var url = container.getAttribute("data-live-list");
  var every = parseInt(container.getAttribute("data-every"), 10) || 5000;
  var last = null;
  function refresh() {
    // Leave the list alone while a button in it has the focus, or nobody sees it.
    var busy = container.contains(document.activeElement) && document.activeElement.tagName === "BUTTON";
    if (busy || document.hidden) {
      window.setTimeout(refresh, every);
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          throw new Error("the list answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== last) {
          last = html;
          var focused = focusKey(container);
          container.innerHTML = html; // rendered and escaped by the server's templates
          confirmMoves(container);
          refocus(container, focused);
        }
        window.setTimeout(refresh, every);
      })
      .catch(function () {
        window.setTimeout(refresh, Math.max(every, 5000));
      });
  }
  window.setTimeout(refresh, every);
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-live-list]").forEach(liveList);
});
