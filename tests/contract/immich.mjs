// Immich's server side of its machine-learning API, as
// server/src/repositories/machine-learning.repository.ts does it: Node's own FormData and fetch
// (undici), the availability check on /ping, encodeImage and encodeText, and the answer read as
// Immich reads it (response.ok, then response.json()[task]).
import { readFile } from 'node:fs/promises';
import assert from 'node:assert/strict';

const url = process.env.HAILO_CLIP_URL;
const modelName = 'RN50x4__openai';

async function predict(payload, config) {
  const formData = new FormData();
  formData.append('entries', JSON.stringify(config));
  if ('imagePath' in payload) {
    const fileBuffer = await readFile(payload.imagePath);
    formData.append('image', new Blob([new Uint8Array(fileBuffer)]));
  } else {
    formData.append('text', payload.text);
  }
  return fetch(new URL('/predict', url), { method: 'POST', body: formData });
}

const ping = await fetch(new URL('/ping', url), { signal: AbortSignal.timeout(2000) });
assert.ok(ping.ok, `/ping: ${ping.status}`);

const image = await predict(
  { imagePath: 'tests/fixtures/images/cat.jpg' },
  { clip: { visual: { modelName } } },
);
assert.ok(image.ok, `visual: ${image.status} ${await image.clone().text()}`);
const visual = await image.json();
const imageVector = JSON.parse(visual.clip);
assert.equal(typeof visual.clip, 'string');
assert.ok(imageVector.length > 0 && imageVector.every(Number.isFinite));
assert.ok(visual.imageHeight > 0 && visual.imageWidth > 0);

const text = await predict({ text: 'a cat on a sofa' }, { clip: { textual: { modelName, options: { language: undefined } } } });
assert.ok(text.ok, `textual: ${text.status}`);
const textVector = JSON.parse((await text.json()).clip);
assert.equal(textVector.length, imageVector.length);

const faces = await predict(
  { imagePath: 'tests/fixtures/images/cat.jpg' },
  {
    'facial-recognition': {
      detection: { modelName: 'buffalo_l', options: { minScore: 0.7 } },
      recognition: { modelName: 'buffalo_l' },
    },
  },
);
assert.equal(faces.ok, false, 'faces must fail so Immich tries its next URL');
assert.equal((await faces.json()).error_type, 'unsupported_task');
console.log(`immich client: /ping ok, visual ${imageVector.length}-d (${visual.imageWidth}x${visual.imageHeight}), textual ok, faces refused`);
