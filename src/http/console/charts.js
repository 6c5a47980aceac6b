// Sparklines on a canvas: a fixed window of recent samples, scaled from 0 to the largest one.
// A `null` sample (nothing to measure in that interval) leaves a break in the line.

/** Samples kept per chart: a minute and a half at the console's poll interval. */
const POINTS = 60;

export class Sparkline {
  constructor(canvas, color) {
    this.canvas = canvas;
    this.color = color;
    this.values = [];
  }

  push(value) {
    this.values.push(value);
    if (this.values.length > POINTS) this.values.shift();
    this.draw();
  }

  reset() {
    this.values = [];
    this.draw();
  }

  draw() {
    const c = this.canvas;
    // Draw at device resolution so the line stays sharp on dense screens.
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = c.clientWidth || c.width;
    const cssHeight = c.clientHeight || c.height;
    if (c.width !== Math.round(cssWidth * ratio)) c.width = Math.round(cssWidth * ratio);
    if (c.height !== Math.round(cssHeight * ratio)) c.height = Math.round(cssHeight * ratio);
    const g = c.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, cssWidth, cssHeight);
    const measured = this.values.filter((v) => v !== null);
    // What the chart shows, readable without looking at pixels (the browser test uses it).
    c.dataset.samples = measured.length;
    c.dataset.peak = measured.length ? Math.max(...measured) : 0;
    const max = Math.max(1, ...measured);
    const step = cssWidth / (POINTS - 1);
    const x0 = cssWidth - (this.values.length - 1) * step;
    const y = (v) => cssHeight - 2 - (v / max) * (cssHeight - 6);
    g.strokeStyle = '#d8dde6';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, cssHeight - 1.5);
    g.lineTo(cssWidth, cssHeight - 1.5);
    g.stroke();
    g.strokeStyle = this.color;
    g.fillStyle = this.color + '22';
    g.lineWidth = 1.5;
    let run = [];
    const flush = () => {
      if (run.length === 0) return;
      g.beginPath();
      run.forEach(([px, py], i) => (i === 0 ? g.moveTo(px, py) : g.lineTo(px, py)));
      g.stroke();
      g.lineTo(run[run.length - 1][0], cssHeight - 1.5);
      g.lineTo(run[0][0], cssHeight - 1.5);
      g.closePath();
      g.fill();
      run = [];
    };
    this.values.forEach((v, i) => {
      if (v === null) flush();
      else run.push([x0 + i * step, y(v)]);
    });
    flush();
  }
}

/** A compact number: `950`, `12.3k`, `4.1M`. */
export function compact(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (abs >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (abs >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  if (abs >= 100 || Number.isInteger(n)) return String(Math.round(n));
  return n.toFixed(1);
}

/** Bytes with binary units: `512 B`, `3.2 KiB`. */
export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Milliseconds as the largest whole unit that fits: `90s`, `15m`, `2h`, `7d`. */
export function duration(ms) {
  const units = [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]];
  for (const [name, size] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size}${name}`;
  }
  return `${ms}ms`;
}
