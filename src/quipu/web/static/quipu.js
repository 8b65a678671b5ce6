// Quipu's web UI needs JavaScript for two things only: parts of a page that refresh
// themselves (a live scan job's panel, the scanner list), and a confirmation before an
// irreversible move. Every page works without it.
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
function keyOf(element) {
  return element.tagName + "|" + (element.getAttribute("href") || "") + "|" + element.textContent;
}

function focusKey(container) {
  var element = document.activeElement;
  return element && container.contains(element) ? keyOf(element) : null;
}

function refocus(container, key) {
  if (key === null) {
    return;
  }
  var same = Array.prototype.find.call(container.querySelectorAll("a, button"), function (element) {
    return keyOf(element) === key;
  });
  if (same) {
    same.focus();
  }
}

// Fetch the server-rendered fragment at ``url`` every ``every`` ms and put it in
// ``container`` while ``stillLive()`` holds; left alone while one of its buttons has the
// focus (it may be being pressed) or nobody sees the page.
function refreshing(container, url, every, stillLive) {
  var last = null;
  function refresh() {
    if (!stillLive()) {
      return;
    }
    var pressing = container.contains(document.activeElement) && document.activeElement.tagName === "BUTTON";
    if (pressing || document.hidden) {
      window.setTimeout(refresh, every);
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          throw new Error(url + " answered " + response.status);
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
  confirmMoves(document);
  var job = document.getElementById("job-panel");
  if (job) {
    refreshing(job, job.getAttribute("data-panel"), 1000, function () {
      var panel = job.querySelector(".panel");
      return panel !== null && panel.getAttribute("data-live") === "true";
    });
  }
  document.querySelectorAll("[data-live-list]").forEach(function (list) {
    var every = parseInt(list.getAttribute("data-every"), 10) || 5000;
    refreshing(list, list.getAttribute("data-live-list"), every, function () {
      return true;
    });
  });
});
