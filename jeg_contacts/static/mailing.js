/* Announcements: the compose page's live recipient count and preview, and the announcement
   page's progress while sending. Everything here also works without it: the pages render the
   same information on the server. */
(function () {
  "use strict";

  var AUDIENCE_FIELDS = ["topic", "type", "country", "language", "saved_audience"];

  function debounce(fn, wait) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, wait);
    };
  }

  function getJSON(url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = { Accept: "application/json" };
    return fetch(url, options).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    });
  }

  function formatNumber(value) {
    return Number(value).toLocaleString("en");
  }

  // --- Compose ---------------------------------------------------------------------------

  function setUpCompose(form) {
    var countOutput = document.getElementById("recipient-count");
    var description = document.getElementById("audience-description");
    var noRecipients = document.getElementById("no-recipients");
    var filters = form.querySelector("[data-audience-filters]");
    var ignoredNote = document.getElementById("filters-ignored");
    var savedAudience = form.elements.namedItem("saved_audience");
    var previewStatus = document.getElementById("preview-status");
    var countRequest = 0;
    var previewRequest = 0;

    function audienceQuery() {
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        if (AUDIENCE_FIELDS.indexOf(key) !== -1 && value) {
          params.append(key, value);
        }
      });
      return params.toString();
    }

    function showSavedAudienceChoice() {
      if (!filters || !savedAudience) {
        return;
      }
      var chosen = Boolean(savedAudience.value);
      filters.classList.toggle("is-ignored", chosen);
      if (ignoredNote) {
        ignoredNote.hidden = !chosen;
      }
    }

    var updateCount = debounce(function () {
      if (!countOutput) {
        return;
      }
      var request = ++countRequest;
      countOutput.setAttribute("aria-busy", "true");
      getJSON(form.dataset.countUrl + "?" + audienceQuery())
        .then(function (data) {
          if (request !== countRequest) {
            return;
          }
          countOutput.textContent = data.text;
          if (description) {
            description.textContent = "(" + data.description + ")";
          }
          if (noRecipients) {
            noRecipients.hidden = data.count > 0;
          }
        })
        .catch(function () {
          if (request === countRequest) {
            countOutput.textContent = "not known just now (the count is shown again when you save)";
          }
        })
        .finally(function () {
          if (request === countRequest) {
            countOutput.removeAttribute("aria-busy");
          }
        });
    }, 300);

    var updatePreview = debounce(function () {
      var request = ++previewRequest;
      var body = new FormData(form);
      body.set("action", "preview");
      previewStatus.textContent = "Updating the preview…";
      getJSON(form.dataset.previewUrl, { method: "POST", body: body })
        .then(function (data) {
          if (request !== previewRequest) {
            return;
          }
          document.getElementById("preview-subject").textContent = data.subject || "—";
          document.getElementById("preview-html").srcdoc = data.html;
          document.getElementById("preview-text").textContent = data.text;
          document.getElementById("preview-fallback").hidden = !data.fallback;
          previewStatus.textContent = "";
        })
        .catch(function () {
          if (request === previewRequest) {
            previewStatus.textContent =
              "The preview could not be updated just now. Your text is not lost; " +
              "use “Update preview and count” or save the draft.";
          }
        });
    }, 600);

    function isAudienceField(element) {
      return AUDIENCE_FIELDS.indexOf(element.name) !== -1;
    }

    function isPreviewField(element) {
      return /^(subject|body)_(en|fr|ru)$/.test(element.name) ||
        element.name === "kind" || element.name === "preview_language";
    }

    form.addEventListener("change", function (event) {
      if (isAudienceField(event.target)) {
        showSavedAudienceChoice();
        updateCount();
        updatePreview(); // the footer names the audience's topics
      } else if (isPreviewField(event.target)) {
        updatePreview();
      }
    });
    form.addEventListener("input", function (event) {
      if (isPreviewField(event.target)) {
        updatePreview();
      }
    });

    // The preview button refreshes in place instead of reloading the page.
    var previewButton = form.querySelector("[data-preview-button]");
    if (previewButton) {
      previewButton.addEventListener("click", function (event) {
        event.preventDefault();
        updateCount();
        updatePreview();
      });
    }

    // Enter in a one-line field: save the audience from its name field, else save the draft
    // (without this the first button of the form, the preview, would take it).
    form.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.key !== "Enter" || target.tagName !== "INPUT" ||
          ["text", "search", "email"].indexOf(target.type) === -1) {
        return;
      }
      event.preventDefault();
      var selector = target.name === "audience_name" ? "[data-save-audience-button]"
        : "[data-save-button]";
      var button = form.querySelector(selector);
      if (form.requestSubmit) {
        form.requestSubmit(button);
      } else {
        button.click();
      }
    });

    showSavedAudienceChoice();
  }

  // --- Progress --------------------------------------------------------------------------

  var FAST = ["sending"]; // polled every 2 s
  var SLOW = ["scheduled", "paused"]; // polled every 15 s, to notice a start or a resume

  function setUpProgress(section) {
    var url = section.dataset.statusUrl;
    var initial = section.dataset.status;
    var bar = document.getElementById("send-progress");
    var failures = 0;

    function setText(id, text) {
      var element = document.getElementById(id);
      if (element) {
        element.textContent = text || "";
      }
    }

    function show(data) {
      bar.max = Math.max(data.total, 1);
      bar.value = data.done;
      bar.textContent = data.percent + "%";
      setText("progress-summary", data.summary);
      setText("progress-rate", data.rate_text);
      setText("progress-eta", data.eta_text);
      var warning = document.getElementById("progress-warning");
      warning.textContent = data.warning || "";
      warning.hidden = !data.warning;
      Object.keys(data.counts).forEach(function (key) {
        var cell = section.querySelector('[data-count="' + key + '"]');
        if (cell) {
          cell.textContent = formatNumber(data.counts[key]);
        }
      });
      var waiting = section.querySelector('[data-count="waiting_to_retry"]');
      if (waiting) {
        waiting.textContent = formatNumber(data.waiting_to_retry);
      }
      if (data.status !== initial) {
        var notice = document.getElementById("progress-finished");
        notice.querySelector('[data-field="status"]').textContent = data.status;
        notice.hidden = false;
        setText("progress-live", "Status: " + data.status + ". " + data.summary);
      }
    }

    function delayFor(status) {
      if (FAST.indexOf(status) !== -1) {
        return 2000;
      }
      if (SLOW.indexOf(status) !== -1) {
        return 15000;
      }
      return null; // finished: stop polling
    }

    function poll() {
      getJSON(url, { cache: "no-store" })
        .then(function (data) {
          failures = 0;
          show(data);
          var delay = delayFor(data.status);
          if (delay !== null && data.status === initial) {
            setTimeout(poll, delay);
          } else if (delay !== null) {
            // The state changed (paused, resumed, started): keep following it.
            initial = data.status;
            setTimeout(poll, delay);
          }
        })
        .catch(function () {
          failures += 1;
          if (failures < 5) {
            setTimeout(poll, 5000 * failures);
          } else {
            setText("progress-eta", "Progress is no longer updating; reload the page.");
          }
        });
    }

    var delay = delayFor(initial);
    if (delay !== null) {
      setTimeout(poll, delay);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-compose]");
    if (form) {
      setUpCompose(form);
    }
    var section = document.querySelector("[data-status-url]");
    if (section) {
      setUpProgress(section);
    }
  });
})();
