/**
 * Small numeric helpers for the anomaly detector: medians, the normal distribution and the
 * tails of a count that is Poisson or overdispersed (negative binomial). Pure, no I/O.
 */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 on erfc, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erfc = poly * Math.exp(-x * x);
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0) return Number.NEGATIVE_INFINITY;
  if (p >= 1) return Number.POSITIVE_INFINITY;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/** Scores are capped here: a probability of 0 is "as far out as we say anything about". */
export const MAX_SCORE = 50;

/** The normal-equivalent of an upper-tail probability: P = 0.00135 → 3. Never negative. */
export function tailToScore(p: number): number {
  if (!(p > 0)) return MAX_SCORE;
  if (p >= 0.5) return 0;
  return Math.min(MAX_SCORE, -normalQuantile(p));
}

/** Below this mean the count's tails are summed exactly; above, a normal approximation is close enough. */
const EXACT_MEAN = 60;

/**
 * P(Y ≤ k) for a count with the given mean and variance: negative binomial when the variance
 * exceeds the mean, Poisson otherwise (a binomial's narrower spread is treated as Poisson: wider,
 * so conservative); normal with continuity correction for large means.
 */
export function countCdf(k: number, mean: number, variance: number): number {
  if (k < 0) return 0;
  const kk = Math.floor(k);
  if (mean <= 0) return 1;
  const v = Math.max(variance, mean);
  if (mean > EXACT_MEAN) return gammaCdf(kk + 0.5, mean, v);
  let pmf: number;
  let ratio: (j: number) => number;
  if (v > mean * (1 + 1e-9)) {
    const r = (mean * mean) / (v - mean);
    const q = mean / (r + mean);
    pmf = Math.exp(r * Math.log(r / (r + mean)));
    ratio = (j) => ((j + r) / (j + 1)) * q;
  } else {
    pmf = Math.exp(-mean);
    ratio = (j) => mean / (j + 1);
  }
  let sum = 0;
  for (let j = 0; j <= kk; j++) {
    sum += pmf;
    if (sum >= 1) return 1;
    pmf *= ratio(j);
    if (j > mean && pmf < 1e-18) break;
  }
  return Math.min(1, sum);
}

/**
 * P(X ≤ x) for a gamma with this mean and variance (Wilson–Hilferty: the cube root is nearly
 * normal). Keeps the right skew of an overdispersed count that a plain normal would lose.
 */
function gammaCdf(x: number, mean: number, variance: number): number {
  if (x <= 0) return 0;
  const shape = (mean * mean) / variance;
  const a = 1 / (9 * shape);
  return normalCdf((Math.cbrt(x / mean) - (1 - a)) / Math.sqrt(a));
}

/** P(Y ≥ k), computed directly in the normal case so far tails keep their precision. */
export function countUpperTail(k: number, mean: number, variance: number): number {
  if (k <= 0) return 1;
  const v = Math.max(variance, mean);
  if (mean > EXACT_MEAN) return 1 - gammaCdf(Math.floor(k) - 0.5, mean, v);
  return Math.max(0, 1 - countCdf(k - 1, mean, variance));
}

/**
 * Signed score of an observed count: the normal-equivalent of how improbable a value at least this
 * far from the mean is, positive above, negative below. 2 when 3 is expected scores about −0.2.
 */
export function countScore(observed: number, mean: number, variance: number): number {
  if (observed >= mean) return tailToScore(countUpperTail(Math.round(observed), mean, variance));
  return -tailToScore(countCdf(Math.round(observed), mean, variance));
}

/** The band of counts whose |score| stays under `sensitivity`: [lower, upper], integers. */
export function countBand(mean: number, variance: number, sensitivity: number): { lower: number; upper: number } {
  const alpha = normalCdf(-sensitivity);
  const sd = Math.sqrt(Math.max(variance, mean, 1e-9));
  const hi = Math.ceil(mean + (sensitivity + 10) * sd + 10);
  // lower: the smallest k with P(Y ≤ k) > alpha; upper: the smallest k with P(Y ≥ k + 1) ≤ alpha.
  const lower = searchInt(0, hi, (k) => countCdf(k, mean, variance) > alpha);
  const upper = searchInt(0, hi, (k) => countUpperTail(k + 1, mean, variance) <= alpha);
  return { lower, upper };
}

/** The smallest integer in [lo, hi] where a monotone predicate holds (hi when none does). */
function searchInt(lo: number, hi: number, ok: (k: number) => boolean): number {
  let a = lo;
  let b = hi;
  while (a < b) {
    const m = (a + b) >> 1;
    if (ok(m)) b = m;
    else a = m + 1;
  }
  return a;
}

/** Grid over a standard normal for the lognormal mixture (z from −6 to 6, normalised weights). */
const GRID = (() => {
  const z: number[] = [];
  const w: number[] = [];
  for (let x = -6; x <= 6.0001; x += 0.25) {
    z.push(x);
    w.push(Math.exp(-(x * x) / 2));
  }
  const total = w.reduce((a, b) => a + b, 0);
  return { z, w: w.map((v) => v / total) };
})();

/**
 * A Poisson count whose mean is itself lognormal (mean `mean`, relative variance `rel`): the
 * between-hours swings of a rate are multiplicative, with a heavier right tail than a gamma's.
 */
export function lognormalPoisson(
  mean: number,
  rel: number,
): { cdf: (k: number) => number; upper: (k: number) => number } {
  const s2 = Math.log(1 + Math.max(0, rel));
  const s = Math.sqrt(s2);
  const means = GRID.z.map((z) => mean * Math.exp(s * z - s2 / 2));
  const mix = (f: (m: number) => number) => means.reduce((a, m, i) => a + GRID.w[i]! * f(m), 0);
  return {
    cdf: (k) => (k < 0 ? 0 : mix((m) => countCdf(k, m, m))),
    upper: (k) => (k <= 0 ? 1 : mix((m) => countUpperTail(k, m, m))),
  };
}

export function mixtureScore(observed: number, mean: number, d: ReturnType<typeof lognormalPoisson>): number {
  const y = Math.round(observed);
  if (y >= mean) return tailToScore(d.upper(y));
  return -tailToScore(d.cdf(y));
}

export function mixtureBand(
  mean: number,
  rel: number,
  d: ReturnType<typeof lognormalPoisson>,
  sensitivity: number,
): { lower: number; upper: number } {
  const alpha = normalCdf(-sensitivity);
  const hi = Math.ceil(mean * Math.exp((sensitivity + 4) * Math.sqrt(Math.log(1 + rel))) + 10 * Math.sqrt(mean) + 10);
  return {
    lower: searchInt(0, hi, (k) => d.cdf(k) > alpha),
    upper: searchInt(0, hi, (k) => d.upper(k + 1) <= alpha),
  };
}
