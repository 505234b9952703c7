// The official OpenAI Node client (pinned in package-lock.json) against the
// gateway's HTTP API: a streamed chat completion, a completion, and
// structured output (response_format; every finished output is validated
// by Ajv, an independent JSON Schema validator). Run by
// run.sh with MOE_HTTP_BASE_URL, MOE_API_KEY, MOE_MODEL and MOE_GOLDEN_JSON.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import Ajv from 'ajv';
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.MOE_HTTP_BASE_URL,
  apiKey: process.env.MOE_API_KEY,
  maxRetries: 0,
  timeout: 60_000,
});
const model = process.env.MOE_MODEL;
const golden = JSON.parse(readFileSync(process.env.MOE_GOLDEN_JSON, 'utf8')).cases[0];

test('completion matches the golden greedy text', async () => {
  const r = await client.completions.create({
    model, prompt: golden.prompt_text, max_tokens: 16, temperature: 0,
  });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text, golden.greedy_text);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 16);
});

test('streamed chat completion with usage', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: golden.prompt_text }],
    max_completion_tokens: 8,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let content = '';
  let role;
  let finish;
  let usage;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      role ??= c.delta.role;
      content += c.delta.content ?? '';
      finish ??= c.finish_reason ?? undefined;
    }
  }
  assert.equal(role, 'assistant');
  assert.ok(['stop', 'length'].includes(finish), `finish_reason ${finish}`);
  assert.ok(usage && usage.completion_tokens >= 1 && usage.completion_tokens <= 8, JSON.stringify(usage));

  // The same request unstreamed gives the same text (greedy).
  const whole = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: golden.prompt_text }], max_completion_tokens: 8, temperature: 0,
  });
  assert.equal(whole.choices[0].message.content, content);
});

test('errors become typed client errors', async () => {
  await assert.rejects(
    client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 }),
    (e) => e instanceof OpenAI.NotFoundError && e.param === 'model');
  await assert.rejects(
    client.completions.create({ model, prompt: 'x', max_tokens: 1, temperature: -1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
  const bad = new OpenAI({ baseURL: process.env.MOE_HTTP_BASE_URL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [model]);
});

test('response_format json_schema and json_object: every finished choice parses and validates', async () => {
  const schema = {
    type: 'object',
    properties: {
      city: { type: 'string', maxLength: 12 },
      temp: { type: 'integer', minimum: -40, maximum: 50 },
      sky: { enum: ['clear', 'cloudy', 'rain'] },
    },
    required: ['city', 'temp', 'sky'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'The weather as JSON' }],
    response_format: { type: 'json_schema', json_schema: { name: 'weather', strict: true, schema } },
    n: 4, seed: 7, temperature: 1.0, max_completion_tokens: 80,
  });
  assert.equal(r.choices.length, 4);
  const validate = new Ajv({ strict: true }).compile(schema);
  let finished = 0;
  for (const c of r.choices) {
    if (c.finish_reason !== 'stop') continue;  // cut by max tokens: a prefix of a valid answer
    finished += 1;
    const v = JSON.parse(c.message.content);
    assert.ok(validate(v), `${c.message.content}: ${JSON.stringify(validate.errors)}`);
    assert.deepEqual(Object.keys(v), ['city', 'temp', 'sky'], c.message.content);
    assert.equal(typeof v.city, 'string');
    assert.ok([...v.city].length <= 12, c.message.content);
    assert.ok(Number.isInteger(v.temp) && v.temp >= -40 && v.temp <= 50, c.message.content);
    assert.ok(['clear', 'cloudy', 'rain'].includes(v.sky), c.message.content);
  }
  assert.ok(finished >= 1, 'at least one choice finished');
  // Same seed, same answers.
  const again = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'The weather as JSON' }],
    response_format: { type: 'json_schema', json_schema: { name: 'weather', strict: true, schema } },
    n: 4, seed: 7, temperature: 1.0, max_completion_tokens: 80,
  });
  assert.deepEqual(again.choices.map((c) => c.message.content), r.choices.map((c) => c.message.content));

  const obj = await client.completions.create({
    model, prompt: 'JSON:', response_format: { type: 'json_object' }, n: 2, seed: 1, max_tokens: 40,
  });
  for (const c of obj.choices) {
    if (c.finish_reason !== 'stop') continue;
    const v = JSON.parse(c.text);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), c.text);
  }
  // An unsupported keyword is a typed 400 naming it.
  await assert.rejects(
    client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: { type: 'integer', multipleOf: 3 } } },
    }),
    (e) => e instanceof OpenAI.BadRequestError && /multipleOf/.test(e.message));
});
