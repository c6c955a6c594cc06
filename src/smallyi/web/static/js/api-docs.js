// The /api/docs page: Swagger UI from the package's own files (vendored from npm), started by this file
// rather than an inline script, so the page keeps the console's Content-Security-Policy (script-src 'self').
// URLs are relative to the page (/api/docs), so it works under a path prefix behind nginx too.
window.ui = SwaggerUIBundle({
  url: new URL("../openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
