// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Close an open menu when clicking elsewhere or pressing Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  // Escape closes the menu that holds the focus and gives the focus back to its button,
  // so it does not fall to the page's start; else it closes every open menu.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var here = document.activeElement && document.activeElement.closest("details.menu[open]");
    if (here) {
      here.removeAttribute("open");
      here.querySelector("summary").focus();
      return;
    }
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
    });
  });
  // A menu the keyboard leaves closes, so its panel hides no control the focus reaches.
  document.addEventListener("focusout", function (event) {
    var menu = event.target.closest && event.target.closest("details.menu[open]");
    if (menu && event.relatedTarget && !menu.contains(event.relatedTarget)) {
      menu.removeAttribute("open");
    }
  });

  // A form that changes something is sent once: a double click sent it twice, and the
  // browser showed the second answer ("already invited", "link not valid any more", a
  // second API token) in place of the first. After three seconds (a send stopped with
  // Esc) it may be sent again, and a page shown again from the history is sendable.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || (form.method || "").toLowerCase() !== "post") return;
    if (form.dataset.sending) {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "1";
    setTimeout(function () { delete form.dataset.sending; }, 3000);
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      delete form.dataset.sending;
    });
  });

  // A refused form comes back with the focus on its first field marked wrong, which its
  // message describes: from the top of the page, a keyboard or screen-reader user had to
  // find both. A page whose own autofocus chose a field keeps that, and a part marked
  // data-no-autofocus (the invitation results' retry form, below the links shown once)
  // does not take it.
  var refused = document.querySelector('main [aria-invalid="true"]');
  if (refused && !refused.closest("[data-no-autofocus]") && !document.querySelector("[autofocus]")) {
    refused.focus();
  }

  // A "select all" checkbox toggles every checkbox named by its data-select-all.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    var name = all.dataset.selectAll;
    var boxes = function () {
      return document.querySelectorAll('input[type=checkbox][name="' + name + '"]');
    };
    all.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = all.checked; });
    });
  });

  // The member picker: as one types, ask the server for at most 20 matches and put
  // them in place of the list the page showed. Without this, the Search button reloads
  // the page with the same list.
  document.querySelectorAll("input[data-member-search]").forEach(function (input) {
    var results = document.getElementById(input.dataset.results);
    if (!results) return;
    var timer = null;
    var asked = 0;
    // `fallback`: a press of Search, which reloads the page as without this script when
    // the endpoint will not answer (a reader the page lets search, the endpoint not).
    var search = function (fallback) {
      var ticket = ++asked;
      var url = input.dataset.memberSearch + "?field=" + encodeURIComponent(input.dataset.field) +
        "&q=" + encodeURIComponent(input.value);
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        // A redirect (an ended session sent to sign in) is no list of members.
        .then(function (response) { return response.ok && !response.redirected ? response.text() : null; })
        .then(function (html) {
          // An answer to an older query, or a refusal, leaves the list as it is.
          if (ticket !== asked) return;
          if (html === null) {
            if (fallback === true && input.form) input.form.submit();
            return;
          }
          var found = new DOMParser().parseFromString(html, "text/html").body;
          // The member chosen so far (a group's owner) stays offered, and ticked.
          var chosen = results.querySelector("li[data-chosen]");
          var ticked = results.querySelector("input[type=radio]:checked");
          results.querySelectorAll("[data-matches]").forEach(function (old) { old.remove(); });
          Array.prototype.slice.call(found.children).forEach(function (node) {
            results.appendChild(document.importNode(node, true));
          });
          if (ticked && !chosen) {
            var again = results.querySelector('input[type=radio][value="' + CSS.escape(ticked.value) + '"]');
            if (again) again.checked = true;
          }
        })
        .catch(function (error) {
          // A fetch the browser gave up because the page is going elsewhere is no reason
          // to reload it.
          if (error && error.name === "AbortError") return;
          if (fallback === true && ticket === asked && input.form) input.form.submit();
        });
    };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    // Enter searches in place instead of reloading the page.
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      event.preventDefault();
      clearTimeout(timer);
      search(true);
    });
    // So does the Search button: its reload would empty every other field of the page
    // (a new group's name and description typed before choosing its owner).
    if (input.form) {
      input.form.addEventListener("submit", function (event) {
        event.preventDefault();
        clearTimeout(timer);
        search(true);
      });
    }
  });

  // Copy buttons put their data-copy text on the clipboard, and say so to everyone: the
  // button's label names its row, so its text alone would not be read out. Without a
  // clipboard (a page not served over HTTPS) they stay hidden: the link is on the page.
  if (navigator.clipboard) {
    var said = document.createElement("p");
    said.className = "visually-hidden";
    said.setAttribute("role", "status");
    document.body.appendChild(said);
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.hidden = false;
      var label = button.textContent;
      button.addEventListener("click", function () {
        said.textContent = "";
        navigator.clipboard.writeText(button.dataset.copy).then(function () {
          button.textContent = "Copied";
          said.textContent = "Copied to the clipboard.";
          setTimeout(function () { button.textContent = label; said.textContent = ""; }, 1500);
        }, function () {
          said.textContent = "The link could not be copied; select it on the page instead.";
        });
      });
    });
  }
})();
