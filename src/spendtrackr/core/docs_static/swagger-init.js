// Starts Swagger UI from the settings the page carries as JSON: a file of its own rather than an
// inline script, so that the page runs under a CSP without 'unsafe-inline' scripts.
"use strict";
(function () {
  const settings = JSON.parse(document.getElementById("swagger-settings").textContent);
  window.ui = SwaggerUIBundle(
    Object.assign(
      {
        dom_id: "#swagger-ui",
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
        layout: "BaseLayout",
      },
      settings,
    ),
  );
})();
