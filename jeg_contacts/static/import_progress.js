/* A running check or import: follow its status, then show its page once it is done. Without
   this script the page reloads itself every few seconds (a noscript meta refresh). */
(function () {
  "use strict";

  function follow(section) {
    var bar = document.getElementById("job-bar");
    var failures = 0;

    function setText(id, text) {
      var element = document.getElementById(id);
      if (element) element.textContent = text || "";
    }

    function show(data) {
      if (data.writing || !data.rows_total) {
        bar.removeAttribute("value"); // indeterminate: reading the file, or writing
      } else {
        bar.max = data.rows_total;
        bar.value = data.rows_done;
      }
      bar.textContent = (data.percent || 0) + "%";
      document.getElementById("job-text").firstElementChild.textContent = data.text;
      setText("job-time-left", data.time_left);
      document.getElementById("job-unresponsive").hidden = !data.unresponsive;
    }

    // The file's page is this very address, perhaps with another #fragment: replacing the
    // location would only scroll, so the page is reloaded at the new address.
    function showPage(target) {
      if (target.pathname !== window.location.pathname) {
        window.location.replace(target.href);
        return;
      }
      history.scrollRestoration = "manual";
      history.replaceState(null, "", target.href);
      window.location.reload();
    }

    function poll() {
      fetch(section.dataset.statusUrl, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          if (data.finished) {
            setText("job-live", "Done. Loading the result…");
            showPage(new URL(data.url, window.location.href));
            return;
          }
          show(data);
          setTimeout(poll, 1000);
        })
        .catch(function () {
          failures += 1;
          if (failures < 5) {
            setTimeout(poll, 2000 * failures);
          } else {
            setText("job-time-left", "Progress is no longer updating: use Refresh below.");
          }
        });
    }

    setTimeout(poll, 500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var section = document.querySelector(".job-progress[data-status-url]");
    if (section) follow(section);
  });
})();
