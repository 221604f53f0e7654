// Small progressive enhancements; every control also works without JavaScript.
(function () {
  "use strict";

  // Close open <details> menus on Escape or on a click outside them.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  // Flash messages can be dismissed.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (button) button.parentElement.remove();
  });

  // Phone layout: the sidebar slides in, and closes with its × button, Escape or a tap outside it.
  function setSidebar(open) {
    var sidebar = document.getElementById("sidebar");
    var toggle = document.querySelector("[data-nav-toggle]");
    if (!sidebar || !toggle) return;
    sidebar.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }
  document.addEventListener("click", function (event) {
    // The toggle and the × are links (#sidebar, #) so that the menu also opens without JavaScript (CSS :target);
    // with it, the class does the work and the URL keeps no fragment.
    if (event.target.closest("[data-nav-toggle]")) {
      event.preventDefault();
      var sidebar = document.getElementById("sidebar");
      setSidebar(!(sidebar && sidebar.classList.contains("open")));
    } else if (event.target.closest("[data-nav-close]")) {
      event.preventDefault();
      setSidebar(false);
    } else if (!event.target.closest("#sidebar")) {
      setSidebar(false);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") setSidebar(false);
  });
})();

// Confirmation dialogs: links with hx-target="#dialog-body" load a confirmation into the <dialog> and open it.
document.addEventListener("htmx:afterSwap", function (event) {
  if (event.detail.target && event.detail.target.id === "dialog-body") {
    var dialog = document.getElementById("dialog");
    if (dialog && !dialog.open) dialog.showModal();
  }
});
document.addEventListener("click", function (event) {
  var close = event.target.closest("[data-dialog-close]");
  var dialog = document.getElementById("dialog");
  if (close && dialog && dialog.contains(close)) {
    event.preventDefault();
    dialog.close();
  }
});

// Copy buttons ([data-copy] = selector of the element whose text is copied). Hidden until this script runs,
// since without JavaScript the text is simply selected by hand.
(function () {
  "use strict";
  function reveal(root) {
    (root || document).querySelectorAll("[data-copy][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  document.addEventListener("htmx:load", function (event) { reveal(event.detail.elt); });
  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.textContent.trim();
    function done() {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
    }
  });
})();
