import { z } from "zod";
import { ErrorAnswerSchema } from "./api-schemas.js";
import type { RouteSpec } from "./routes.js";

const json = (schema: z.ZodType, io: "input" | "output") => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
};

/** Parameters of an object schema (path or query) as OpenAPI parameter objects. */
function parameters(schema: z.ZodType | undefined, where: "path" | "query"): unknown[] {
  if (!schema) return [];
  const js = json(schema, "input") as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === "path" || (js.required ?? []).includes(name),
    schema: s,
  }));
}

const ERRORS: Record<string, string> = {
  "400": "invalid request: every invalid field is listed with its path",
  "401": "missing or invalid API key",
  "403": "the API key lacks the scope this route needs",
  "404": "unknown user, cluster or artefact",
  "413": "request body or batch too large",
  "429": "rate limit exceeded (see Retry-After)",
  "503": "not ready: no model or table loaded yet",
};

/** The OpenAPI 3.1 document of the API, built from the same zod schemas that validate requests. */
export function openApiDocument(specs: RouteSpec[], info: { version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorContent = { "application/json": { schema: json(ErrorAnswerSchema, "output") } };
  for (const spec of specs) {
    const path = spec.path.replace(/:(\w+)/g, "{$1}");
    const responses: Record<string, unknown> = {
      [String(spec.okStatus ?? 200)]: { description: "success", content: { "application/json": { schema: json(spec.response, "output") } } },
    };
    for (const [status, description] of Object.entries(ERRORS)) {
      if (!spec.scope && ["401", "403", "429"].includes(status)) continue;
      responses[status] = { description, content: errorContent };
    }
    paths[path] = {
      ...paths[path],
      [spec.method]: {
        summary: spec.summary,
        ...(spec.scope ? { security: [{ apiKey: [] }], "x-scope": spec.scope } : { security: [] }),
        parameters: [...parameters(spec.params, "path"), ...parameters(spec.query, "query")],
        ...(spec.body ? { requestBody: { required: true, content: { "application/json": { schema: json(spec.body, "input") } } } } : {}),
        responses,
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "freshrec", version: info.version, description: "Next novel interest clusters from a fine-tuned LLM kept fresh with RAG." },
    components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "API key with scopes ingest, read, admin" } } },
    security: [{ apiKey: [] }],
    paths,
  };
}
