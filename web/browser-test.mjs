// The page at / and the reference at /docs in headless Chromium (Debian's, driven by
// playwright-core): classify a fixture image with three labels, see the ranked list and the
// mock warning, an API error shown as the API states it, an embedding; /docs renders the
// description. No request may leave the service's origin. Writes a screenshot.
// Usage: HAILO_CLIP_URL=http://127.0.0.1:PORT node web/browser-test.mjs [screenshot.png]
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const base = process.env.HAILO_CLIP_URL;
const shot = process.argv[2] || '.cache/web/try-page.png';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-default-apps', '--disable-sync', '--no-first-run', '--disable-gpu'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  const outside = [];
  const problems = [];
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) outside.push(r.url()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 422/.test(m.text())) problems.push(`${m.text()} (${m.location().url})`); });

  await page.goto(base + '/');
  await page.locator('#mock').waitFor({ state: 'visible' });
  assert.match(await page.locator('#mock').innerText(), /mock backend/i);
  assert.match(await page.locator('#svc').innerText(), /backend mock/);

  await page.setInputFiles('#file', 'tests/fixtures/images/cat.jpg');
  await page.locator('#preview').waitFor({ state: 'visible' });
  await page.fill('#labels', 'cat\ndog\ncar');
  await page.click('#classify');
  await page.locator('#results li').nth(2).waitFor();
  const rows = await page.locator('#results li').evaluateAll((lis) => lis.map((li) => ({
    label: li.querySelector('.lab').textContent,
    score: parseFloat(li.querySelector('.num').textContent),
    width: parseFloat(li.querySelector('.bar span').style.width),
  })));
  assert.equal(rows.length, 3);
  assert.deepEqual(rows.map((r) => r.label).sort(), ['car', 'cat', 'dog']);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].score >= rows[i].score, 'ranked best first');
  assert.ok(Math.abs(rows.reduce((a, r) => a + r.score, 0) - 100) < 0.5, 'scores sum to 100%');
  for (const r of rows) assert.ok(Math.abs(r.width - r.score) < 0.2, 'bar width is the score');
  assert.match(await page.locator('#timing').innerText(), /backend mock · model clip-resnet-50x4 · device [\d.]+ ms/);
  await page.screenshot({ path: shot, fullPage: true });

  // The API's own words for a refused request.
  await page.fill('#labels', 'cat, cat');
  await page.click('#classify');
  await page.locator('#error').waitFor({ state: 'visible' });
  const err = await page.locator('#error').innerText();
  assert.match(err, /422 invalid_request: label "cat" is given twice/);

  await page.click('#embedtext');
  await page.locator('#embedout').filter({ hasText: 'dimensions' }).waitFor();
  assert.match(await page.locator('#embedout').innerText(), /text: 640 dimensions/);
  assert.equal(await page.locator('#error').isVisible(), false, 'a success clears the error');

  // A phone-sized photo is scaled down before it is sent.
  await page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 4000; c.height = 3000;
    const g = c.getContext('2d');
    g.fillStyle = '#7a5'; g.fillRect(0, 0, 4000, 3000);
    const blob = await new Promise((ok) => c.toBlob(ok, 'image/jpeg', 0.9));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'photo.jpg', { type: 'image/jpeg' }));
    const input = document.getElementById('file');
    input.files = dt.files;
    input.dispatchEvent(new Event('change'));
  });
  await page.locator('#imginfo').filter({ hasText: 'photo.jpg' }).waitFor();
  assert.match(await page.locator('#imginfo').innerText(), /4000×3000 scaled to 1024×768/);
  await page.fill('#labels', 'grass, sky');
  await page.click('#classify');
  await page.locator('#results li').nth(1).waitFor();
  assert.equal(await page.locator('#results li').count(), 2);

  await page.goto(base + '/docs');
  const doc = page.locator('rapi-doc');
  await doc.waitFor();
  await page.waitForFunction(() => {
    const root = document.querySelector('rapi-doc')?.shadowRoot;
    return root && /\/v1\/classify/.test(root.textContent) && /\/predict/.test(root.textContent);
  }, null, { timeout: 15000 });

  assert.deepEqual(outside, [], 'no request leaves the origin');
  assert.deepEqual(problems, [], 'no script errors');
  console.log(`browser: ranked ${rows.map((r) => `${r.label} ${r.score}%`).join(', ')}; mock warned; API error shown; 4000x3000 photo scaled to 1024 px; /docs rendered; screenshot ${shot}`);
} finally {
  await browser.close();
}
