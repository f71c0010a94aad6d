// Sends one GenAI trace (an agent span, a chat span below it) to an OTLP/HTTP endpoint with the
// JavaScript SDK's JSON exporter. Usage: node send.mjs <traces-url> <api-key>; prints the trace id.
import { context, trace, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

const [url, key] = process.argv.slice(2);
const exporter = new OTLPTraceExporter({ url, headers: { Authorization: `Bearer ${key}` } });
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ "service.name": "js-chatbot" }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer("inferlog-js-test", "1.0.0");

const agent = tracer.startSpan("invoke_agent helper", {
  attributes: { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper" },
});
const inside = trace.setSpan(context.active(), agent);
const chat = tracer.startSpan(
  "chat gpt-js",
  {
    kind: SpanKind.CLIENT,
    attributes: {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "gpt-js",
      "gen_ai.response.model": "gpt-js-2026-02-02",
      "gen_ai.request.temperature": 0.5,
      "gen_ai.usage.input_tokens": 9,
      "gen_ai.usage.output_tokens": 4,
      "gen_ai.conversation.id": "js-conversation",
      "gen_ai.input.messages": JSON.stringify([{ role: "user", parts: [{ type: "text", content: "Hello from Node" }] }]),
      "gen_ai.output.messages": JSON.stringify([
        { role: "assistant", parts: [{ type: "text", content: "Hello, Node." }], finish_reason: "stop" },
      ]),
      "gen_ai.response.finish_reasons": ["stop"],
    },
  },
  inside,
);
chat.setStatus({ code: SpanStatusCode.OK });
chat.end();
agent.end();
await provider.forceFlush();
await provider.shutdown();
console.log(agent.spanContext().traceId);
