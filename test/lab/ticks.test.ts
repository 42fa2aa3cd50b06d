/** The page's axis labels: the fewest significant digits at which neighbouring ticks differ. */
import { describe, it, expect } from 'vitest';
import { tickLabels } from '../../demo/lab/ticks.js';

describe('tickLabels', () => {
  it.each([
    [[0.001, 0.0015, 0.002], ['0.001', '0.0015', '0.002']],         // uPlot's default shows 0.001 twice
    [[0.0018, 0.0019, 0.002], ['0.0018', '0.0019', '0.002']],
    [[0.0001, 0.00015, 0.0002], ['1e-4', '1.5e-4', '2e-4']],
    [[0, 0.5, 1, 1.5], ['0', '0.5', '1', '1.5']],
    [[2.5, 3, 3.5], ['2.5', '3', '3.5']],
    [[100, 200], ['100', '200']],
    [[1e-5, 2e-5], ['1e-5', '2e-5']],
  ])('%j', (splits, labels) => {
    expect(tickLabels(splits)).toEqual(labels);
  });
});
