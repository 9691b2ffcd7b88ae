// diffaug's CPU kernels, compiled on first use by _cpu_kernels.py:
// * blend_levels_ and its backward: the antialiased warp of diffaug.functional.antialias (below);
// * warp_nearest_uint8: the nearest-neighbour warp of uint8 images with constant padding;
// * equalize_uint8: histogram equalisation of uint8 images (PIL's table, as torchvision's equalize);
// * adjust_sharpness_uint8: torchvision's adjust_sharpness of uint8 images, a factor per sample.
//
// blend_levels_:
// The pyramid of antialias.py, fused per sample: the caller samples level 0 with grid_sample into
// `out`; this kernel then, for each sample that shrinks, builds only the levels its blend uses and
// only the part of each level its grid reads (PyTorch's antialiased bilinear resize, the same
// weights as F.interpolate(antialias=True)), samples them bilinearly with grid_sample's formulas,
// and lerps them into `out` in place, as antialias.blend_levels_ does with PyTorch ops. A sample
// whose level-0 weight is 1 is not touched (bit for bit the plain warp). Levels are built in a
// small per-thread buffer that stays in cache, instead of full-size tensors for the whole batch.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace {

// Taps of a 1-D antialiased bilinear resize from `in` to `out` samples (align_corners=False), for
// odd levels after the half-band filter: output i reads input start[i] .. start[i] + count[i] - 1
// with weights weight[i * width + k].
template <typename scalar_t>
struct Taps {
  std::vector<int64_t> start, count;
  std::vector<scalar_t> weight;
  int64_t width = 0;
};

// The half-band filter odd levels get before their resize (edge pixels repeated), as
// antialias._halfband: it zeroes 0.5 cycles/pixel, which a tent of non-integer support leaves in part.
constexpr double kHalfband[5] = {-1.0 / 16, 4.0 / 16, 10.0 / 16, 4.0 / 16, -1.0 / 16};

template <typename scalar_t>
Taps<scalar_t> antialias_taps(int64_t in, int64_t out, bool halfband) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = scale >= 1.0 ? scale : 1.0;  // the tent's half-width, in input pixels
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  Taps<scalar_t> taps;
  taps.width = static_cast<int64_t>(std::ceil(support)) * 2 + 1 + (halfband ? 4 : 0);
  taps.start.resize(out);
  taps.count.resize(out);
  taps.weight.assign(static_cast<size_t>(out * taps.width), scalar_t(0));
  std::vector<double> w(static_cast<size_t>(taps.width)), composed(static_cast<size_t>(taps.width));
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
    for (int64_t k = 0; k < n; ++k) w[k] = total > 0.0 ? w[k] / total : 0.0;
    if (!halfband) {
      taps.start[i] = lo;
      taps.count[i] = n;
      for (int64_t k = 0; k < n; ++k) taps.weight[i * taps.width + k] = static_cast<scalar_t>(w[k]);
      continue;
    }
    // The tent's taps composed with the half-band's: two more input pixels on each side, those
    // beyond the edge folded onto it (the edge pixel repeated).
    const int64_t start = std::max<int64_t>(lo - 2, 0), end = std::min<int64_t>(lo + n + 2, in);
    std::fill(composed.begin(), composed.end(), 0.0);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t m = -2; m <= 2; ++m) {
        const int64_t q = std::min<int64_t>(std::max<int64_t>(lo + k + m, 0), in - 1);
        composed[q - start] += w[k] * kHalfband[m + 2];
      }
    taps.start[i] = start;
    taps.count[i] = end - start;
    for (int64_t k = 0; k < end - start; ++k) taps.weight[i * taps.width + k] = static_cast<scalar_t>(composed[k]);
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

// The part of one level a sample reads: level rows [row0, row1) and columns [col0, col1), one
// pixel of zeros around the level included (see region_start); of it, the rows [in_row0, in_row1)
// and columns [in_col0, in_col1) inside the level, which read input columns [x0, x0 + span).
struct Region {
  int64_t row0, row1, col0, col1, rows, cols;
  int64_t in_row0, in_row1, in_col0, in_col1, in_rows, x0, span;
};

template <typename scalar_t>
Region region_of(scalar_t x_min, scalar_t x_max, scalar_t y_min, scalar_t y_max, int64_t lh, int64_t lw, bool border,
                 const Taps<scalar_t>& tx) {
  Region g;
  g.row0 = region_start(source_index(y_min, lh, border), lh);
  g.row1 = region_end(source_index(y_max, lh, border), lh, g.row0);
  g.col0 = region_start(source_index(x_min, lw, border), lw);
  g.col1 = region_end(source_index(x_max, lw, border), lw, g.col0);
  g.rows = g.row1 - g.row0;
  g.cols = g.col1 - g.col0;
  g.in_row0 = std::max<int64_t>(g.row0, 0);
  g.in_row1 = std::min<int64_t>(g.row1, lh);
  g.in_col0 = std::max<int64_t>(g.col0, 0);
  g.in_col1 = std::min<int64_t>(g.col1, lw);
  g.in_rows = std::max<int64_t>(g.in_row1 - g.in_row0, 0);
  const bool any = g.in_col1 > g.in_col0;
  g.x0 = any ? tx.start[g.in_col0] : 0;
  g.span = any ? tx.start[g.in_col1 - 1] + tx.count[g.in_col1 - 1] - g.x0 : 0;
  return g;
}

// Build a level region of one sample (`image`: C x H x W) into `level`, transposed ([c][col][row],
// zeros outside the level): resize along y first (whole contiguous input rows, vectorised), then
// along x on the fewer rows; transposing the y-pass result keeps the x pass contiguous too.
template <typename scalar_t>
void build_level(const scalar_t* image, int64_t channels, int64_t height, int64_t width, const Taps<scalar_t>& tx,
                 const Taps<scalar_t>& ty, const Region& g, std::vector<scalar_t>& columns,
                 std::vector<scalar_t>& transposed, std::vector<scalar_t>& level) {
  columns.assign(static_cast<size_t>(g.in_rows * g.span), scalar_t(0));
  transposed.resize(static_cast<size_t>(g.span * g.in_rows));
  level.assign(static_cast<size_t>(channels * g.cols * g.rows), scalar_t(0));
  for (int64_t c = 0; c < channels; ++c) {
    std::fill(columns.begin(), columns.end(), scalar_t(0));
    for (int64_t i = 0; i < g.in_rows; ++i) {
      scalar_t* dst = columns.data() + i * g.span;
      const int64_t li = g.in_row0 + i;
      for (int64_t k = 0; k < ty.count[li]; ++k) {
        const scalar_t wk = ty.weight[li * ty.width + k];
        const scalar_t* src = image + (c * height + ty.start[li] + k) * width + g.x0;
        for (int64_t x = 0; x < g.span; ++x) dst[x] += wk * src[x];
      }
    }
    for (int64_t i = 0; i < g.in_rows; ++i)
      for (int64_t x = 0; x < g.span; ++x) transposed[x * g.in_rows + i] = columns[i * g.span + x];
    for (int64_t q = g.in_col0; q < g.in_col1; ++q) {
      scalar_t* dst = level.data() + (c * g.cols + (q - g.col0)) * g.rows + (g.in_row0 - g.row0);
      const scalar_t* wt = tx.weight.data() + q * tx.width;
      for (int64_t k = 0; k < tx.count[q]; ++k) {
        const scalar_t wk = wt[k];
        const scalar_t* src = transposed.data() + (tx.start[q] + k - g.x0) * g.in_rows;
        for (int64_t i = 0; i < g.in_rows; ++i) dst[i] += wk * src[i];
      }
    }
  }
}

// The adjoint of build_level: add to `d_image` (C x H x W) what a gradient `d_level` of the level
// region (same layout as `level`) gives the input pixels it was resized from.
template <typename scalar_t>
void build_level_backward(const std::vector<scalar_t>& d_level, int64_t channels, int64_t height, int64_t width,
                          const Taps<scalar_t>& tx, const Taps<scalar_t>& ty, const Region& g,
                          std::vector<scalar_t>& columns, std::vector<scalar_t>& transposed, scalar_t* d_image) {
  columns.resize(static_cast<size_t>(g.in_rows * g.span));
  transposed.resize(static_cast<size_t>(g.span * g.in_rows));
  for (int64_t c = 0; c < channels; ++c) {
    std::fill(transposed.begin(), transposed.end(), scalar_t(0));
    for (int64_t q = g.in_col0; q < g.in_col1; ++q) {
      const scalar_t* src = d_level.data() + (c * g.cols + (q - g.col0)) * g.rows + (g.in_row0 - g.row0);
      const scalar_t* wt = tx.weight.data() + q * tx.width;
      for (int64_t k = 0; k < tx.count[q]; ++k) {
        const scalar_t wk = wt[k];
        scalar_t* dst = transposed.data() + (tx.start[q] + k - g.x0) * g.in_rows;
        for (int64_t i = 0; i < g.in_rows; ++i) dst[i] += wk * src[i];
      }
    }
    for (int64_t i = 0; i < g.in_rows; ++i)
      for (int64_t x = 0; x < g.span; ++x) columns[i * g.span + x] = transposed[x * g.in_rows + i];
    for (int64_t i = 0; i < g.in_rows; ++i) {
      const scalar_t* src = columns.data() + i * g.span;
      const int64_t li = g.in_row0 + i;
      for (int64_t k = 0; k < ty.count[li]; ++k) {
        const scalar_t wk = ty.weight[li * ty.width + k];
        scalar_t* dst = d_image + (c * height + ty.start[li] + k) * width + g.x0;
        for (int64_t x = 0; x < g.span; ++x) dst[x] += wk * src[x];
      }
    }
  }
}

// Bilinear taps of one point in a level region: offsets into a [col][row] plane and weights, with
// grid_sample's formulas; taps outside the level are clamped onto the zero border.
template <typename scalar_t>
struct Tap {
  int64_t nw, ne, sw, se;    // offsets in the plane
  scalar_t east, south;      // fractional position
  scalar_t dx, dy;           // d(source index) / d(normalised coordinate), 0 where border clipped
};

template <typename scalar_t>
inline Tap<scalar_t> tap_of(scalar_t gx, scalar_t gy, int64_t lh, int64_t lw, bool border, const Region& g) {
  Tap<scalar_t> t;
  scalar_t ix = ((gx + 1) * static_cast<scalar_t>(lw) - 1) / 2, iy = ((gy + 1) * static_cast<scalar_t>(lh) - 1) / 2;
  t.dx = static_cast<scalar_t>(lw) / 2;
  t.dy = static_cast<scalar_t>(lh) / 2;
  if (border) {  // grid_sample's clip: no gradient where the index is clipped (or on the edge)
    if (ix <= 0 || ix >= static_cast<scalar_t>(lw - 1)) t.dx = 0;
    if (iy <= 0 || iy >= static_cast<scalar_t>(lh - 1)) t.dy = 0;
    ix = std::min(static_cast<scalar_t>(lw - 1), std::max(ix, scalar_t(0)));
    iy = std::min(static_cast<scalar_t>(lh - 1), std::max(iy, scalar_t(0)));
  }
  const scalar_t fx = std::floor(ix), fy = std::floor(iy);
  t.east = ix - fx;
  t.south = iy - fy;
  const int64_t xw = static_cast<int64_t>(fx), yn = static_cast<int64_t>(fy);
  const int64_t west = std::min(std::max(xw, g.col0), g.col1 - 1) - g.col0;
  const int64_t east = std::min(std::max(xw + 1, g.col0), g.col1 - 1) - g.col0;
  const int64_t north = std::min(std::max(yn, g.row0), g.row1 - 1) - g.row0;
  const int64_t south = std::min(std::max(yn + 1, g.row0), g.row1 - 1) - g.row0;
  t.nw = west * g.rows + north;
  t.ne = east * g.rows + north;
  t.sw = west * g.rows + south;
  t.se = east * g.rows + south;
  return t;
}

// The 1-D resize taps of every level (entry 0, the input itself, left empty): x then y.
template <typename scalar_t>
std::pair<std::vector<Taps<scalar_t>>, std::vector<Taps<scalar_t>>> level_taps(int64_t height, int64_t width,
                                                                               const std::vector<int64_t>& heights,
                                                                               const std::vector<int64_t>& widths) {
  const size_t levels = heights.size();
  std::vector<Taps<scalar_t>> taps_x(levels), taps_y(levels);
  for (size_t j = 1; j < levels; ++j) {
    taps_x[j] = antialias_taps<scalar_t>(width, widths[j], j % 2 == 1);
    taps_y[j] = antialias_taps<scalar_t>(height, heights[j], j % 2 == 1);
  }
  return {std::move(taps_x), std::move(taps_y)};
}

// The normalised box one sample's grid reads, and whether every coordinate is finite (a sample
// with one that is not keeps the plain warp: its footprint, and so its filter, is undefined).
template <typename scalar_t>
struct GridBox {
  scalar_t x_min, x_max, y_min, y_max;
  bool finite;
};

template <typename scalar_t>
GridBox<scalar_t> grid_box(const scalar_t* gx, const scalar_t* gy, int64_t pixels) {
  GridBox<scalar_t> box{gx[0], gx[0], gy[0], gy[0], true};
  for (int64_t p = 0; p < pixels; ++p) {
    box.finite = box.finite && std::isfinite(gx[p]) && std::isfinite(gy[p]);
    box.x_min = std::min(box.x_min, gx[p]);
    box.x_max = std::max(box.x_max, gx[p]);
    box.y_min = std::min(box.y_min, gy[p]);
    box.y_max = std::max(box.y_max, gy[p]);
  }
  return box;
}

// One sample's inputs in the batch's memory: its lerp weights (one per level), its grid as an x
// plane then a y plane (pixels each) and its image (C x H x W). The forward and the backward read
// them alike.
template <typename scalar_t>
struct SampleInputs {
  const scalar_t* lerp;
  const scalar_t* gx;
  const scalar_t* gy;
  const scalar_t* image;
};

template <typename scalar_t>
inline SampleInputs<scalar_t> sample_inputs(const scalar_t* lerp_data, const scalar_t* grid_data, const scalar_t* image_data,
                                            int64_t b, int64_t levels, int64_t pixels, int64_t image_size) {
  const scalar_t* gx = grid_data + b * 2 * pixels;
  return {lerp_data + b * levels, gx, gx + pixels, image_data + b * image_size};
}

// One level of one sample: build the part of it the grid reads, sample it bilinearly with
// grid_sample's weights and lerp it into `result` (torch.lerp's formula, its branch on the weight
// taken once per sample). The kernel's time goes here.
template <typename scalar_t>
inline void blend_level_impl(const scalar_t* image, int64_t channels, int64_t height, int64_t width, const Taps<scalar_t>& tx,
                             const Taps<scalar_t>& ty, const Region& g, const scalar_t* gx, const scalar_t* gy, int64_t pixels,
                             int64_t lh, int64_t lw, bool border, scalar_t r, std::vector<scalar_t>& columns,
                             std::vector<scalar_t>& transposed, std::vector<scalar_t>& level, scalar_t* result) {
  build_level(image, channels, height, width, tx, ty, g, columns, transposed, level);
  const bool low = r < scalar_t(0.5);
  const scalar_t step = low ? r : scalar_t(1) - r;
  for (int64_t p = 0; p < pixels; ++p) {
    const Tap<scalar_t> t = tap_of(gx[p], gy[p], lh, lw, border, g);
    const scalar_t nw = (1 - t.east) * (1 - t.south), ne = t.east * (1 - t.south);
    const scalar_t sw = (1 - t.east) * t.south, se = t.east * t.south;
    for (int64_t c = 0; c < channels; ++c) {
      const scalar_t* plane = level.data() + c * g.cols * g.rows;
      const scalar_t v = nw * plane[t.nw] + ne * plane[t.ne] + sw * plane[t.sw] + se * plane[t.se];
      scalar_t& target = result[c * pixels + p];
      target = low ? target + step * (v - target) : v - (v - target) * step;
    }
  }
}

// Built for the baseline and for AVX2 (which brings SSE4.1's one-instruction floor and wider
// vectors), chosen when the library loads (an ifunc: x86-64 with glibc): a portable build that runs
// the wider code where the CPU has it, about 7% faster (measured). No FMA in either, so the same
// operations in the same order: the same values on every CPU. Elsewhere, the baseline only.
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones) && __has_attribute(flatten)
#define DIFFAUG_CLONES __attribute__((target_clones("avx2", "default"), flatten))
#endif
#endif
#ifndef DIFFAUG_CLONES
#define DIFFAUG_CLONES
#endif

#define DIFFAUG_BLEND_LEVEL(scalar_t)                                                                                          \
  DIFFAUG_CLONES void blend_level(const scalar_t* image, int64_t channels, int64_t height, int64_t width,                      \
                                  const Taps<scalar_t>& tx, const Taps<scalar_t>& ty, const Region& g, const scalar_t* gx,      \
                                  const scalar_t* gy, int64_t pixels, int64_t lh, int64_t lw, bool border, scalar_t r,          \
                                  std::vector<scalar_t>& columns, std::vector<scalar_t>& transposed,                           \
                                  std::vector<scalar_t>& level, scalar_t* result) {                                            \
    blend_level_impl(image, channels, height, width, tx, ty, g, gx, gy, pixels, lh, lw, border, r, columns, transposed, level, \
                     result);                                                                                                  \
  }
DIFFAUG_BLEND_LEVEL(float)
DIFFAUG_BLEND_LEVEL(double)

template <typename scalar_t>
void blend_levels_impl(at::Tensor& out, const at::Tensor& images, const at::Tensor& grid, const at::Tensor& lerp_weights,
                       const std::vector<int64_t>& heights, const std::vector<int64_t>& widths, bool border) {
  const int64_t batch = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  const int64_t out_h = out.size(2), out_w = out.size(3), pixels = out_h * out_w;
  const int64_t levels = lerp_weights.size(1);  // level 0 (the input) and levels 1 .. levels - 1
  const scalar_t* image_data = images.data_ptr<scalar_t>();
  const scalar_t* grid_data = grid.data_ptr<scalar_t>();
  const scalar_t* lerp_data = lerp_weights.data_ptr<scalar_t>();
  scalar_t* out_data = out.data_ptr<scalar_t>();

  const auto [taps_x, taps_y] = level_taps<scalar_t>(height, width, heights, widths);

  // Samples in parallel on torch's threads, handed out one at a time: only the samples that shrink
  // have work, and they need not be spread evenly over the batch.
#pragma omp parallel num_threads(at::in_parallel_region() ? 1 : at::get_num_threads())
  {
    std::vector<scalar_t> columns, transposed, level;  // per thread, reused across samples and levels
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch; ++b) {
      const auto [lerp, gx, gy, image] =
          sample_inputs(lerp_data, grid_data, image_data, b, levels, pixels, channels * height * width);
      scalar_t* result = out_data + b * channels * pixels;
      bool blends = false;
      for (int64_t j = 1; j < levels; ++j) blends = blends || lerp[j] != 0;
      if (!blends) continue;  // level 0 only: the plain warp, untouched
      const GridBox<scalar_t> box = grid_box(gx, gy, pixels);
      if (!box.finite) continue;
      for (int64_t j = 1; j < levels; ++j) {
        const scalar_t r = lerp[j];
        if (r == 0) continue;
        const int64_t lh = heights[j], lw = widths[j];
        const Taps<scalar_t>& tx = taps_x[j];
        const Taps<scalar_t>& ty = taps_y[j];
        const Region g = region_of(box.x_min, box.x_max, box.y_min, box.y_max, lh, lw, border, tx);
        blend_level(image, channels, height, width, tx, ty, g, gx, gy, pixels, lh, lw, border, r, columns, transposed, level,
                    result);
      }
    }
  }
}

// grid_sample's bilinear read of a whole image (C x H x W) at a normalised point, per channel into
// `values` (zeros outside unless border): level 0 of a sample, recomputed for the backward pass.
template <typename scalar_t>
void sample_image(const scalar_t* image, int64_t channels, int64_t height, int64_t width, scalar_t gx, scalar_t gy,
                  bool border, scalar_t* values) {
  const scalar_t ix = source_index(gx, width, border), iy = source_index(gy, height, border);
  const scalar_t fx = std::floor(ix), fy = std::floor(iy);
  const scalar_t east = ix - fx, south = iy - fy;
  const int64_t xw = static_cast<int64_t>(fx), yn = static_cast<int64_t>(fy);
  const bool w_in = xw >= 0 && xw < width, e_in = xw + 1 >= 0 && xw + 1 < width;
  const bool n_in = yn >= 0 && yn < height, s_in = yn + 1 >= 0 && yn + 1 < height;
  for (int64_t c = 0; c < channels; ++c) {
    const scalar_t* plane = image + c * height * width;
    scalar_t v = 0;
    if (n_in && w_in) v += (1 - east) * (1 - south) * plane[yn * width + xw];
    if (n_in && e_in) v += east * (1 - south) * plane[yn * width + xw + 1];
    if (s_in && w_in) v += (1 - east) * south * plane[(yn + 1) * width + xw];
    if (s_in && e_in) v += east * south * plane[(yn + 1) * width + xw + 1];
    values[c] = v;
  }
}

// The backward of blend_levels_impl for one batch: from the gradient of the blended output, the
// gradients of the images (through the levels only, added into d_images), of the grid (through the
// levels only) and of the lerp weights. Level 0's own gradients are grid_sample's (the caller's).
template <typename scalar_t>
void blend_levels_backward_impl(const at::Tensor& grad_out, const at::Tensor& images, const at::Tensor& grid,
                                const at::Tensor& lerp_weights, const std::vector<int64_t>& heights,
                                const std::vector<int64_t>& widths, bool border, at::Tensor& d_images,
                                at::Tensor& d_grid, at::Tensor& d_lerp_weights) {
  const int64_t batch = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  const int64_t pixels = grad_out.size(2) * grad_out.size(3);
  const int64_t levels = lerp_weights.size(1);
  const scalar_t* image_data = images.data_ptr<scalar_t>();
  const scalar_t* grid_data = grid.data_ptr<scalar_t>();
  const scalar_t* lerp_data = lerp_weights.data_ptr<scalar_t>();
  const scalar_t* grad_data = grad_out.data_ptr<scalar_t>();
  scalar_t* d_image_data = d_images.data_ptr<scalar_t>();
  scalar_t* d_grid_data = d_grid.data_ptr<scalar_t>();
  scalar_t* d_lerp_data = d_lerp_weights.data_ptr<scalar_t>();

  const auto [taps_x, taps_y] = level_taps<scalar_t>(height, width, heights, widths);

#pragma omp parallel num_threads(at::in_parallel_region() ? 1 : at::get_num_threads())
  {
    std::vector<scalar_t> columns, transposed, base(channels), out_before, sampled;
    std::vector<std::vector<scalar_t>> level_data, d_level_data;
    std::vector<Region> regions;
    std::vector<Tap<scalar_t>> taps;
    std::vector<int64_t> active;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch; ++b) {
      const auto [lerp, gx, gy, image] =
          sample_inputs(lerp_data, grid_data, image_data, b, levels, pixels, channels * height * width);
      const scalar_t* grad = grad_data + b * channels * pixels;
      scalar_t* d_gx = d_grid_data + b * 2 * pixels;
      scalar_t* d_gy = d_gx + pixels;
      scalar_t* d_lerp = d_lerp_data + b * levels;
      active.clear();
      for (int64_t j = 1; j < levels; ++j)
        if (lerp[j] != 0) active.push_back(j);
      if (active.empty()) continue;  // the forward left this sample as level 0 made it
      const GridBox<scalar_t> box = grid_box(gx, gy, pixels);
      if (!box.finite) continue;
      const size_t n = active.size();
      level_data.resize(n);
      d_level_data.resize(n);
      regions.resize(n);
      taps.resize(n);
      out_before.resize(n);
      sampled.resize(n);
      for (size_t a = 0; a < n; ++a) {
        const int64_t j = active[a];
        regions[a] = region_of(box.x_min, box.x_max, box.y_min, box.y_max, heights[j], widths[j], border, taps_x[j]);
        build_level(image, channels, height, width, taps_x[j], taps_y[j], regions[a], columns, transposed, level_data[a]);
        d_level_data[a].assign(level_data[a].size(), scalar_t(0));
      }
      for (int64_t p = 0; p < pixels; ++p) {
        sample_image(image, channels, height, width, gx[p], gy[p], border, base.data());
        for (size_t a = 0; a < n; ++a) taps[a] = tap_of(gx[p], gy[p], heights[active[a]], widths[active[a]], border, regions[a]);
        scalar_t d_x = 0, d_y = 0;
        for (int64_t c = 0; c < channels; ++c) {
          // Replay the chain of lerps for this value, then walk it back.
          scalar_t value = base[c];
          for (size_t a = 0; a < n; ++a) {
            const Tap<scalar_t>& t = taps[a];
            const scalar_t* plane = level_data[a].data() + c * regions[a].cols * regions[a].rows;
            sampled[a] = (1 - t.east) * (1 - t.south) * plane[t.nw] + t.east * (1 - t.south) * plane[t.ne] +
                         (1 - t.east) * t.south * plane[t.sw] + t.east * t.south * plane[t.se];
            out_before[a] = value;
            value = value + lerp[active[a]] * (sampled[a] - value);
          }
          scalar_t g = grad[c * pixels + p];
          for (size_t a = n; a-- > 0;) {
            const scalar_t r = lerp[active[a]];
            const Tap<scalar_t>& t = taps[a];
            d_lerp[active[a]] += g * (sampled[a] - out_before[a]);
            const scalar_t d_sample = g * r;
            g *= 1 - r;
            scalar_t* d_plane = d_level_data[a].data() + c * regions[a].cols * regions[a].rows;
            const scalar_t* plane = level_data[a].data() + c * regions[a].cols * regions[a].rows;
            d_plane[t.nw] += d_sample * (1 - t.east) * (1 - t.south);
            d_plane[t.ne] += d_sample * t.east * (1 - t.south);
            d_plane[t.sw] += d_sample * (1 - t.east) * t.south;
            d_plane[t.se] += d_sample * t.east * t.south;
            d_x += d_sample * t.dx * ((plane[t.ne] - plane[t.nw]) * (1 - t.south) + (plane[t.se] - plane[t.sw]) * t.south);
            d_y += d_sample * t.dy * ((plane[t.sw] - plane[t.nw]) * (1 - t.east) + (plane[t.se] - plane[t.ne]) * t.east);
          }
        }
        d_gx[p] = d_x;
        d_gy[p] = d_y;
      }
      scalar_t* d_image = d_image_data + b * channels * height * width;
      for (size_t a = 0; a < n; ++a)
        build_level_backward(d_level_data[a], channels, height, width, taps_x[active[a]], taps_y[active[a]], regions[a],
                             columns, transposed, d_image);
    }
  }
}

}  // namespace

// out (B, C, h, w): the level-0 sample, blended in place. images (B, C, H, W); grid (B, 2, h, w):
// normalised x plane then y plane; lerp_weights (B, L): the lerp weight of each level (column 0 unused);
// heights, widths: the L level sizes (entry 0, the input, unused). All contiguous, one dtype.
void blend_levels_(at::Tensor out, const at::Tensor& images, const at::Tensor& grid, const at::Tensor& lerp_weights,
                   const std::vector<int64_t>& heights, const std::vector<int64_t>& widths, bool border) {
  TORCH_CHECK(out.is_contiguous() && images.is_contiguous() && grid.is_contiguous() && lerp_weights.is_contiguous(),
              "blend_levels_ takes contiguous tensors");
  TORCH_CHECK(!out.is_cuda(), "blend_levels_ is a CPU kernel");
  AT_DISPATCH_FLOATING_TYPES(images.scalar_type(), "blend_levels_", [&] {
    blend_levels_impl<scalar_t>(out, images, grid, lerp_weights, heights, widths, border);
  });
}

// The backward of blend_levels_: adds the images' gradient through the levels into `d_images`
// (contiguous, like `images`: level 0's gradient, from grid_sample's backward, so that no second
// full-size buffer is made) and returns (d_grid, d_lerp_weights), see blend_levels_backward_impl.
std::vector<at::Tensor> blend_levels_backward(const at::Tensor& grad_out, const at::Tensor& images, const at::Tensor& grid,
                                              const at::Tensor& lerp_weights, const std::vector<int64_t>& heights,
                                              const std::vector<int64_t>& widths, bool border, at::Tensor d_images) {
  TORCH_CHECK(grad_out.is_contiguous() && images.is_contiguous() && grid.is_contiguous() && lerp_weights.is_contiguous() &&
                  d_images.is_contiguous(),
              "blend_levels_backward takes contiguous tensors");
  TORCH_CHECK(!images.is_cuda(), "blend_levels_backward is a CPU kernel");
  TORCH_CHECK(d_images.sizes() == images.sizes() && d_images.scalar_type() == images.scalar_type(),
              "blend_levels_backward: d_images must match images");
  auto d_grid = at::zeros_like(grid);
  auto d_lerp_weights = at::zeros_like(lerp_weights);
  AT_DISPATCH_FLOATING_TYPES(images.scalar_type(), "blend_levels_backward", [&] {
    blend_levels_backward_impl<scalar_t>(grad_out, images, grid, lerp_weights, heights, widths, border, d_images, d_grid,
                                         d_lerp_weights);
  });
  return {d_grid, d_lerp_weights};
}

// Round half to even, as grid_sample's nearest sampling (std::nearbyint) does, for |value| < 2^22 (the
// warp takes images with sides below 2^22, and rounds only points within half a pixel of them):
// adding and subtracting 1.5 * 2^23 leaves no fraction bits, and the addition rounds to nearest even.
// Plain float arithmetic, where nearbyint is a library call on the portable x86-64 baseline.
inline float round_even(float value) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
  return (value + kShift) - kShift;
}

// The offset (row * row_stride + column * column_stride) of the nearest pixel of each of `count` grid
// points (cx[j] + rx, cy[j] + ry), unnormalised as grid_sample does with align_corners=False; -1 for a
// point outside the image. Branch-free float and int32 arithmetic, so that the compiler vectorises it
// (DIFFAUG_CLONES: also for AVX2, as the antialiasing loops above).
DIFFAUG_CLONES void nearest_offsets(const float* __restrict cx, const float* __restrict cy, float rx, float ry,
                                    float size_x, float size_y, int32_t row_stride, int32_t column_stride, int64_t count,
                                    int32_t* __restrict offsets) {
  for (int64_t j = 0; j < count; ++j) {
    const float u = ((cx[j] + rx + 1.0f) * size_x - 1.0f) / 2.0f;
    const float v = ((cy[j] + ry + 1.0f) * size_y - 1.0f) / 2.0f;
    // Only points within half a pixel of the image can round into it; for those, round_even is exact.
    const bool near = (u > -1.0f) & (u < size_x) & (v > -1.0f) & (v < size_y);  // false for NaN
    const float x = round_even(near ? u : 0.0f), y = round_even(near ? v : 0.0f);
    const bool inside = near & (x >= 0.0f) & (x <= size_x - 1.0f) & (y >= 0.0f) & (y <= size_y - 1.0f);
    const int32_t at = static_cast<int32_t>(y) * row_stride + static_cast<int32_t>(x) * column_stride;
    offsets[j] = inside ? at : -1;
  }
}

// line[j] = plane[offsets[j]], or `level` where the offset is -1.
DIFFAUG_CLONES void copy_pixels(const uint8_t* __restrict plane, const int32_t* __restrict offsets, uint8_t level,
                                int64_t count, uint8_t* __restrict line) {
  for (int64_t j = 0; j < count; ++j) {
    const int32_t at = offsets[j];
    const uint8_t read = plane[at & ~(at >> 31)];  // the first pixel for an outside point: no branch
    line[j] = at >= 0 ? read : level;
  }
}

// The uint8 nearest warp: out[b, c, i, j] = images[b, c, y, x] for the pixel (x, y) nearest the
// grid point of output pixel (i, j), or fill[c] where that pixel lies outside the image. The grid
// point is columns[b, :, j] + rows[b, :, i], the float32 sum that diffaug.functional.sampling_grid
// itself computes, and it is unnormalised and rounded (half to even) as grid_sample does with
// align_corners=False: the same pixels as grid_sample of the images as floats, with no float copy
// of the images and no float output. Operation by operation in IEEE float32 (built with
// -ffp-contract=off, as PyTorch rounds each of its ops).
// images (B, C, H, W) uint8, any strides; columns (B, 2, w) and rows (B, 2, h) float32 contiguous
// (x then y); fill (C,) levels. Returns (B, C, h, w) uint8, contiguous.
at::Tensor warp_nearest_uint8(const at::Tensor& images, const at::Tensor& columns, const at::Tensor& rows,
                              const std::vector<int64_t>& fill) {
  TORCH_CHECK(!images.is_cuda() && images.scalar_type() == at::kByte && images.dim() == 4,
              "warp_nearest_uint8 takes (B, C, H, W) uint8 CPU images");
  TORCH_CHECK(columns.scalar_type() == at::kFloat && rows.scalar_type() == at::kFloat && columns.is_contiguous() &&
                  rows.is_contiguous(),
              "warp_nearest_uint8 takes contiguous float32 columns and rows");
  const int64_t batch = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  const int64_t out_h = rows.size(2), out_w = columns.size(2);
  TORCH_CHECK(columns.size(0) == batch && rows.size(0) == batch && columns.size(1) == 2 && rows.size(1) == 2,
              "warp_nearest_uint8: columns and rows must be (B, 2, w) and (B, 2, h)");
  TORCH_CHECK(static_cast<int64_t>(fill.size()) == channels, "warp_nearest_uint8: one fill level per channel");
  for (const int64_t level : fill) TORCH_CHECK(level >= 0 && level <= 255, "warp_nearest_uint8: fill levels in [0, 255]");
  TORCH_CHECK(height > 0 && width > 0 && height < (int64_t{1} << 22) && width < (int64_t{1} << 22),
              "warp_nearest_uint8: image sides in [1, 2^22) (round_even is exact below 2^22)");
  TORCH_CHECK((images.size(2) - 1) * images.stride(2) + (images.size(3) - 1) * images.stride(3) < (int64_t{1} << 31),
              "warp_nearest_uint8: a channel's pixels must lie within 2^31 bytes (int32 offsets)");
  auto out = at::empty({batch, channels, out_h, out_w}, images.options().memory_format(at::MemoryFormat::Contiguous));
  const uint8_t* source = images.data_ptr<uint8_t>();
  const float* column_data = columns.data_ptr<float>();
  const float* row_data = rows.data_ptr<float>();
  uint8_t* target = out.data_ptr<uint8_t>();
  const int64_t sb = images.stride(0), sc = images.stride(1), sh = images.stride(2), sw = images.stride(3);
  const float size_x = static_cast<float>(width), size_y = static_cast<float>(height);
  // One task per (sample, output row): the source offset of each output pixel of the row, then one
  // pass per channel (-1: outside, the fill).
  at::parallel_for(0, batch * out_h, 16, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> offsets(static_cast<size_t>(out_w));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / out_h, i = task % out_h;
      const float* cx = column_data + b * 2 * out_w;
      const float rx = row_data[b * 2 * out_h + i], ry = row_data[(b * 2 + 1) * out_h + i];
      nearest_offsets(cx, cx + out_w, rx, ry, size_x, size_y, static_cast<int32_t>(sh), static_cast<int32_t>(sw), out_w,
                      offsets.data());
      for (int64_t c = 0; c < channels; ++c) {
        const uint8_t level = static_cast<uint8_t>(fill[static_cast<size_t>(c)]);
        copy_pixels(source + b * sb + c * sc, offsets.data(), level, out_w, target + ((b * channels + c) * out_h + i) * out_w);
      }
    }
  });
  return out;
}

// Histogram equalisation of each channel of each uint8 image, with PIL's table (torchvision's
// equalize): step = (pixels not at the highest level present) / 255, rounded down; level k maps to
// (pixels below k + step / 2) / step, clamped to 255; a channel with step 0 is kept. Integer
// arithmetic throughout: bitwise diffaug.functional.pixel.equalize's PyTorch ops.
// images (B, C, H, W) uint8, any strides. Returns (B, C, H, W) uint8, contiguous.
at::Tensor equalize_uint8(const at::Tensor& images) {
  TORCH_CHECK(!images.is_cuda() && images.scalar_type() == at::kByte && images.dim() == 4,
              "equalize_uint8 takes (B, C, H, W) uint8 CPU images");
  const int64_t batch = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  auto out = at::empty({batch, channels, height, width}, images.options().memory_format(at::MemoryFormat::Contiguous));
  const uint8_t* source = images.data_ptr<uint8_t>();
  uint8_t* target = out.data_ptr<uint8_t>();
  const int64_t sb = images.stride(0), sc = images.stride(1), sh = images.stride(2), sw = images.stride(3);
  const int64_t count = height * width;
  at::parallel_for(0, batch * channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end && count > 0; ++plane) {
      const uint8_t* pixels = source + (plane / channels) * sb + (plane % channels) * sc;
      uint8_t* line = target + plane * count;
      // Four partial histograms: runs of one level (flat regions) then do not wait on their own increments.
      int64_t partial[4][256] = {{0}};
      for (int64_t i = 0; i < height; ++i) {
        const uint8_t* row = pixels + i * sh;
        int64_t j = 0;
        for (; j + 4 <= width; j += 4) {
          ++partial[0][row[j * sw]];
          ++partial[1][row[(j + 1) * sw]];
          ++partial[2][row[(j + 2) * sw]];
          ++partial[3][row[(j + 3) * sw]];
        }
        for (; j < width; ++j) ++partial[0][row[j * sw]];
      }
      int64_t histogram[256];
      for (int k = 0; k < 256; ++k) histogram[k] = partial[0][k] + partial[1][k] + partial[2][k] + partial[3][k];
      int top = 255;
      while (histogram[top] == 0) --top;  // the highest level present (count > 0: one exists)
      const int64_t step = (count - histogram[top]) / 255;
      uint8_t table[256];
      int64_t below = 0;  // pixels below level k
      for (int k = 0; k < 256; ++k) {
        table[k] = step > 0 ? static_cast<uint8_t>(std::min<int64_t>((below + step / 2) / step, 255)) : static_cast<uint8_t>(k);
        below += histogram[k];
      }
      for (int64_t i = 0; i < height; ++i) {
        const uint8_t* row = pixels + i * sh;
        uint8_t* out_row = line + i * width;
        for (int64_t j = 0; j < width; ++j) out_row[j] = table[row[j * sw]];
      }
    }
  });
  return out;
}

// One interior row of adjust_sharpness_uint8: columns 1 .. width - 2 of `row` (with the rows above and
// below it), written to line[1 .. width - 2]. Contiguous rows and the weight's form fixed per call, so
// that the compiler vectorises the loop.
template <bool kSmallWeight>
DIFFAUG_CLONES void sharpen_row(const uint8_t* __restrict above, const uint8_t* __restrict row,
                                const uint8_t* __restrict below, int64_t width, float weight, uint8_t* __restrict line) {
  const float complement = 1.0f - weight;
  for (int64_t j = 1; j < width - 1; ++j) {
    const int sum = above[j - 1] + above[j] + above[j + 1] + row[j - 1] + row[j + 1] + below[j - 1] + below[j] +
                    below[j + 1] + 5 * row[j];
    const float smooth = round_even(static_cast<float>(sum) / 13.0f);
    const float level = static_cast<float>(row[j]);
    const float blend = kSmallWeight ? smooth + weight * (level - smooth) : level - (level - smooth) * complement;
    const float clamped = blend > 0.0f ? (blend < 255.0f ? blend : 255.0f) : 0.0f;  // NaN: 0
    line[j] = static_cast<uint8_t>(static_cast<int32_t>(clamped));
  }
}

// torchvision's adjust_sharpness of uint8 images: the interior blended with its 3 x 3 smoothing
// (1 around, 5 in the centre, / 13), the one-pixel border kept. As diffaug.functional.pixel's float32
// ops compute it: the smoothed level (sum / 13, rounded half to even), then lerp(smoothed, level,
// factor) in lerp's two forms (weight < 0.5: start + w (end - start); else end - (end - start)(1 - w)),
// clamped to [0, 255] and truncated. PyTorch's vectorised lerp may fuse its multiply-add, so the two
// can differ by one level where a blend lands within rounding of a whole level.
// images (B, C, H, W) uint8, contiguous; factor (B,) float32. Returns (B, C, H, W) uint8, contiguous.
at::Tensor adjust_sharpness_uint8(const at::Tensor& images, const at::Tensor& factor) {
  TORCH_CHECK(!images.is_cuda() && images.scalar_type() == at::kByte && images.dim() == 4 && images.is_contiguous(),
              "adjust_sharpness_uint8 takes contiguous (B, C, H, W) uint8 CPU images");
  TORCH_CHECK(factor.scalar_type() == at::kFloat && factor.dim() == 1 && factor.size(0) == images.size(0) &&
                  factor.is_contiguous(),
              "adjust_sharpness_uint8 takes a (B,) float32 factor");
  const int64_t batch = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  auto out = at::empty_like(images);
  if (out.numel() == 0) return out;
  const uint8_t* source = images.data_ptr<uint8_t>();
  const float* factors = factor.data_ptr<float>();
  uint8_t* target = out.data_ptr<uint8_t>();
  at::parallel_for(0, batch * channels * height, 16, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t i = task % height;
      const uint8_t* row = source + task * width;
      uint8_t* line = target + task * width;
      std::copy(row, row + width, line);  // the border columns (and the interior, overwritten below)
      if (i == 0 || i == height - 1 || width <= 2) continue;  // border rows are kept
      const float weight = factors[task / (channels * height)];
      if (std::abs(weight) < 0.5f) {
        sharpen_row<true>(row - width, row, row + width, width, weight, line);
      } else {
        sharpen_row<false>(row - width, row, row + width, width, weight, line);
      }
    }
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("blend_levels_", &blend_levels_, "Blend the antialiasing levels into the level-0 sample, in place (CPU)");
  module.def("blend_levels_backward", &blend_levels_backward, "The backward of blend_levels_ (CPU)");
  module.def("warp_nearest_uint8", &warp_nearest_uint8, "The nearest-neighbour warp of uint8 images, constant padding (CPU)");
  module.def("equalize_uint8", &equalize_uint8, "Histogram equalisation of uint8 images, PIL's table (CPU)");
  module.def("adjust_sharpness_uint8", &adjust_sharpness_uint8, "torchvision's adjust_sharpness of uint8 images (CPU)");
}
