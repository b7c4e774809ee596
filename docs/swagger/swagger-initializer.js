// Swagger UI (swagger-ui-dist 5.35.0) on the API description that
// demo/nginx.conf serves at /openapi.yaml (docs/openapi.yaml), from this
// host only: no validator badge (it would ask validator.swagger.io), no
// ?url= or ?configUrl= from the address bar.

'use strict';

window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: '/openapi.yaml',
    dom_id: '#swagger-ui',
    deepLinking: true,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    validatorUrl: null,
    queryConfigEnabled: false,
    presets: [
      SwaggerUIBundle.presets.apis,
      SwaggerUIStandalonePreset,
    ],
    plugins: [
      SwaggerUIBundle.plugins.DownloadUrl,
    ],
    layout: 'StandaloneLayout',
  });
});
