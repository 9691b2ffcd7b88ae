// The CPU kernel behind diffaug.functional.antialias, used when no gradient is needed.
//
// The pyramid of antialias.py, fused per sample: the caller samples level 0 with grid_sample into
// `out`; this kernel then, for each sample that shrinks, builds only the levels its blend uses and
// only the part of each level its grid reads (PyTorch's antialiased bilinear resize, the same
// weights as F.interpolate(antialias=True)), samples them bilinearly with grid_sample's formulas,
// and lerps them into `out` in place, as antialias.blend_levels does with PyTorch ops. A sample
// whose level-0 weight is 1 is not touched (bit for bit the plain warp). Levels are built in a
// small per-thread buffer that stays in cache, instead of full-size tensors for the whole batch.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

// Taps of a 1-D antialiased bilinear resize from `in` to `out` samples (align_corners=False):
// output i reads input start[i] .. start[i] + count[i] - 1 with weights weight[i * width + k].
template <typename scalar_t>
struct Taps {
  std::vector<int64_t> start, count;
  std::vector<scalar_t> weight;
  int64_t width = 0;
};

template <typename scalar_t>
Taps<scalar_t> antialias_taps(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = scale >= 1.0 ? scale : 1.0;  // the tent's half-width, in input pixels
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  Taps<scalar_t> taps;
  taps.width = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.start.resize(out);
  taps.count.resize(out);
  taps.weight.assign(static_cast<size_t>(out * taps.width), scalar_t(0));
  std::vector<double> w(static_cast<size_t>(taps.width));
  for (int64_t i = 0; i < out; ++i) {
    const double center = scale * (static_cast<double>(i) + 0.5);
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in) - lo;
    double total = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      const double t = 1.0 - std::abs((static_cast<double>(k + lo) - center + 0.5) * invscale);
      w[k] = t > 0.0 ? t : 0.0;
      total += w[k];
    }
    taps.start[i] = lo;
    taps.count[i] = n;
    for (int64_t k = 0; k < n; ++k) taps.weight[i * taps.width + k] = static_cast<scalar_t>(total > 0.0 ? w[k] / total : 0.0);
  }
  return taps;
}

// grid_sample's source index (align_corners=False), clipped to the image for border padding.
template <typename scalar_t>
inline scalar_t source_index(scalar_t coord, int64_t size, bool border) {
  scalar_t index = ((coord + 1) * static_cast<scalar_t>(size) - 1) / 2;
  if (border) index = std::min(static_cast<scalar_t>(size - 1), std::max(index, scalar_t(0)));
  return index;
}

// First and one-past-last level index of the region that bilinear taps from source indices in
// [lowest, highest] can reach, within [-1, size + 1): the level plus one border pixel on each side.
// Never empty: taps wholly outside the level are clamped onto the border pixel next to them.
template <typename scalar_t>
inline int64_t region_start(scalar_t lowest, int64_t size) {
  const scalar_t start = std::min(std::max(std::floor(lowest), scalar_t(-1)), static_cast<scalar_t>(size));
  return static_cast<int64_t>(start);
}

template <typename scalar_t>
inline int64_t region_end(scalar_t highest, int64_t size, int64_t start) {
  const scalar_t end = std::min(std::floor(highest) + 2, static_cast<scalar_t>(size + 1));
  return std::max(static_cast<int64_t>(std::max(end, scalar_t(-1))), start + 1);
}

template <typename scalar_t>
void blend_levels_impl(at::Tensor& out, const at::Tensor& images, const at::Tensor& grid, const at::Tensor& ratios,
                       const std::vector<int64_t>& heights, const std::vector<int64_t>& widths, bool border) {
  const int64_t batch = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  const int64_t out_h = out.size(2), out_w = out.size(3), pixels = out_h * out_w;
  const int64_t levels = ratios.size(1);  // level 0 (the input) and levels 1 .. levels - 1
  const scalar_t* image_data = images.data_ptr<scalar_t>();
  const scalar_t* grid_data = grid.data_ptr<scalar_t>();
  const scalar_t* ratio_data = ratios.data_ptr<scalar_t>();
  scalar_t* out_data = out.data_ptr<scalar_t>();

  std::vector<Taps<scalar_t>> taps_x(levels), taps_y(levels);
  for (int64_t j = 1; j < levels; ++j) {
    taps_x[j] = antialias_taps<scalar_t>(width, widths[j]);
    taps_y[j] = antialias_taps<scalar_t>(height, heights[j]);
  }

  // Samples in parallel on torch's threads, handed out one at a time: only the samples that shrink
  // have work, and they need not be spread evenly over the batch.
#pragma omp parallel num_threads(at::in_parallel_region() ? 1 : at::get_num_threads())
  {
    std::vector<scalar_t> columns, transposed, level;  // per thread, reused across samples and levels
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch; ++b) {
      const scalar_t* ratio = ratio_data + b * levels;
      const scalar_t* gx = grid_data + b * 2 * pixels;
      const scalar_t* gy = gx + pixels;
      const scalar_t* image = image_data + b * channels * height * width;
      scalar_t* result = out_data + b * channels * pixels;
      bool blends = false;
      for (int64_t j = 1; j < levels; ++j) blends = blends || ratio[j] != 0;
      if (!blends) continue;  // level 0 only: the plain warp, untouched
      // The normalised box the grid reads. A sample with a coordinate that is not finite keeps the
      // plain warp (its footprint, and so its filter, is undefined).
      scalar_t x_min = gx[0], x_max = gx[0], y_min = gy[0], y_max = gy[0];
      bool finite = true;
      for (int64_t p = 0; p < pixels; ++p) {
        finite = finite && std::isfinite(gx[p]) && std::isfinite(gy[p]);
        x_min = std::min(x_min, gx[p]);
        x_max = std::max(x_max, gx[p]);
        y_min = std::min(y_min, gy[p]);
        y_max = std::max(y_max, gy[p]);
      }
      if (!finite) continue;
      for (int64_t j = 1; j < levels; ++j) {
        const scalar_t r = ratio[j];
        if (r == 0) continue;
        const int64_t lh = heights[j], lw = widths[j];
        const Taps<scalar_t>& tx = taps_x[j];
        const Taps<scalar_t>& ty = taps_y[j];
        // The level pixels the bilinear taps can reach, as a region [row0, row1) x [col0, col1) that
        // keeps one pixel of zeros around the level: a tap outside the level is clamped onto that
        // border and reads 0 (zeros padding), so the sampler below needs no bounds test.
        // A grid wholly outside the level keeps just the border pixel it is clamped onto.
        const int64_t row0 = region_start(source_index(y_min, lh, border), lh);
        const int64_t row1 = region_end(source_index(y_max, lh, border), lh, row0);
        const int64_t col0 = region_start(source_index(x_min, lw, border), lw);
        const int64_t col1 = region_end(source_index(x_max, lw, border), lw, col0);
        const int64_t rows = row1 - row0, cols = col1 - col0;
        // The part of the level inside it, and the input columns that part reads.
        const int64_t in_row0 = std::max<int64_t>(row0, 0), in_row1 = std::min<int64_t>(row1, lh);
        const int64_t in_col0 = std::max<int64_t>(col0, 0), in_col1 = std::min<int64_t>(col1, lw);
        const int64_t x0 = in_col1 > in_col0 ? tx.start[in_col0] : 0;
        const int64_t span = in_col1 > in_col0 ? tx.start[in_col1 - 1] + tx.count[in_col1 - 1] - x0 : 0;
        const int64_t in_rows = std::max<int64_t>(in_row1 - in_row0, 0);
        columns.assign(static_cast<size_t>(in_rows * span), scalar_t(0));
        level.assign(static_cast<size_t>(channels * cols * rows), scalar_t(0));  // transposed: [c][col][row]
        for (int64_t c = 0; c < channels; ++c) {
          // Along y: whole input rows, contiguous (vectorised). columns[i][x], i = level row - in_row0.
          std::fill(columns.begin(), columns.end(), scalar_t(0));
          for (int64_t i = 0; i < in_rows; ++i) {
            scalar_t* dst = columns.data() + i * span;
            const int64_t li = in_row0 + i;
            for (int64_t k = 0; k < ty.count[li]; ++k) {
              const scalar_t wk = ty.weight[li * ty.width + k];
              const scalar_t* src = image + (c * height + ty.start[li] + k) * width + x0;
              for (int64_t x = 0; x < span; ++x) dst[x] += wk * src[x];
            }
          }
          // Along x, into the transposed level, a column of level rows at a time; transposing the
          // y-pass result first keeps this pass contiguous (vectorised) too.
          transposed.resize(static_cast<size_t>(span * in_rows));
          for (int64_t i = 0; i < in_rows; ++i)
            for (int64_t x = 0; x < span; ++x) transposed[x * in_rows + i] = columns[i * span + x];
          for (int64_t q = in_col0; q < in_col1; ++q) {
            scalar_t* dst = level.data() + (c * cols + (q - col0)) * rows + (in_row0 - row0);
            const scalar_t* wt = tx.weight.data() + q * tx.width;
            for (int64_t k = 0; k < tx.count[q]; ++k) {
              const scalar_t wk = wt[k];
              const scalar_t* src = transposed.data() + (tx.start[q] + k - x0) * in_rows;
              for (int64_t i = 0; i < in_rows; ++i) dst[i] += wk * src[i];
            }
          }
        }
        // Sample the level bilinearly with grid_sample's weights and blend: torch.lerp's formula,
        // its branch on the weight taken once per sample.
        const bool low = r < scalar_t(0.5);
        const scalar_t step = low ? r : scalar_t(1) - r;
        for (int64_t p = 0; p < pixels; ++p) {
          const scalar_t ix = source_index(gx[p], lw, border), iy = source_index(gy[p], lh, border);
          const scalar_t fx = std::floor(ix), fy = std::floor(iy);
          const scalar_t east = ix - fx, south = iy - fy;
          const int64_t xw = static_cast<int64_t>(fx), yn = static_cast<int64_t>(fy);
          const int64_t west = std::min(std::max(xw, col0), col1 - 1) - col0;
          const int64_t east_col = std::min(std::max(xw + 1, col0), col1 - 1) - col0;
          const int64_t north = std::min(std::max(yn, row0), row1 - 1) - row0;
          const int64_t south_row = std::min(std::max(yn + 1, row0), row1 - 1) - row0;
          const scalar_t nw = (1 - east) * (1 - south), ne = east * (1 - south);
          const scalar_t sw = (1 - east) * south, se = east * south;
          for (int64_t c = 0; c < channels; ++c) {
            const scalar_t* plane = level.data() + c * cols * rows;
            const scalar_t v = nw * plane[west * rows + north] + ne * plane[east_col * rows + north] +
                               sw * plane[west * rows + south_row] + se * plane[east_col * rows + south_row];
            scalar_t& target = result[c * pixels + p];
            target = low ? target + step * (v - target) : v - (v - target) * step;
          }
        }
      }
    }
  }
}

}  // namespace

// out (B, C, h, w): the level-0 sample, blended in place. images (B, C, H, W); grid (B, 2, h, w):
// normalised x plane then y plane; ratios (B, L): the lerp weight of each level (column 0 unused);
// heights, widths: the L level sizes (entry 0, the input, unused). All contiguous, one dtype.
void blend_levels_(at::Tensor out, const at::Tensor& images, const at::Tensor& grid, const at::Tensor& ratios,
                   const std::vector<int64_t>& heights, const std::vector<int64_t>& widths, bool border) {
  TORCH_CHECK(out.is_contiguous() && images.is_contiguous() && grid.is_contiguous() && ratios.is_contiguous(),
              "blend_levels_ takes contiguous tensors");
  TORCH_CHECK(!out.is_cuda(), "blend_levels_ is a CPU kernel");
  AT_DISPATCH_FLOATING_TYPES(images.scalar_type(), "blend_levels_", [&] {
    blend_levels_impl<scalar_t>(out, images, grid, ratios, heights, widths, border);
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("blend_levels_", &blend_levels_, "Blend the antialiasing levels into the level-0 sample, in place (CPU)");
}
