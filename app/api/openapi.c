/* poseidon-api: GET /api/v1/openapi.yaml, the API's OpenAPI document (api/openapi.yaml) as this
 * build was made from it, byte for byte. The Makefile turns the file into $(O)/gen/openapi_gen.h
 * (a byte array), so the document cannot differ from the binary that serves it and no data
 * directory has to be installed; every front (lighttpd, nginx, Apache) passes the path to the
 * workers like any other API route. Public, as /health is (routes.c): it describes the API and
 * says nothing about the installation. */
#include "api.h"
#include "openapi_gen.h"

void h_openapi(struct api *a, struct http_req *r, const struct http_params *p)
{
	(void)a;
	(void)p;
	http_respond(r, 200, "application/yaml", (const char *)openapi_yaml, sizeof openapi_yaml);
}
