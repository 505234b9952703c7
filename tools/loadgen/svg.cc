#include "tools/loadgen/svg.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moe::loadgen {

std::string XmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::vector<double> NiceTicks(double max, int target) {
  if (!(max > 0) || !std::isfinite(max)) return {0, 1};
  const double rough = max / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= rough) break;
  }
  std::vector<double> ticks;
  for (int i = 0;; ++i) {
    ticks.push_back(i * step);
    if (i * step >= max * (1 - 1e-9)) break;
  }
  return ticks;
}

namespace {

constexpr int kWidth = 960;
constexpr int kHeight = 680;
constexpr char kFont[] = "font-family=\"sans-serif\"";

struct Series {
  std::string label;
  std::string color;
  std::vector<std::pair<double, double>> points;  // data coordinates
};

struct Panel {
  double x, y, w, h;  // the plot area in pixels
};

std::string Num(double v) { return absl::StrFormat("%.1f", v); }

std::string TickLabel(double v) {
  if (v == 0) return "0";
  if (std::fabs(v) >= 100) return absl::StrFormat("%.0f", v);
  if (std::fabs(v) >= 1) return absl::StrFormat("%g", std::round(v * 10) / 10);
  return absl::StrFormat("%g", v);
}

// Axes, grid, labels and the series' polylines over [0, x_max] x [0, y_max].
std::string Plot(const Panel& p, const std::string& title, const std::string& x_label, const std::string& y_label,
                 const std::vector<Series>& series, double x_max, double y_max, bool y_fraction) {
  std::string out;
  absl::StrAppend(&out, "<g>\n<text x=\"", Num(p.x + p.w / 2), "\" y=\"", Num(p.y - 12), "\" ", kFont,
                  " font-size=\"14\" font-weight=\"bold\" text-anchor=\"middle\">", XmlEscape(title), "</text>\n");
  absl::StrAppend(&out, "<rect x=\"", Num(p.x), "\" y=\"", Num(p.y), "\" width=\"", Num(p.w), "\" height=\"", Num(p.h),
                  "\" fill=\"#ffffff\" stroke=\"#444444\"/>\n");
  const std::vector<double> x_ticks = NiceTicks(x_max, 5);
  const std::vector<double> y_ticks = y_fraction ? std::vector<double>{0, 0.25, 0.5, 0.75, 1} : NiceTicks(y_max, 4);
  const double x_top = x_ticks.back(), y_top = y_ticks.back();
  auto px = [&](double x) { return p.x + x / x_top * p.w; };
  auto py = [&](double y) { return p.y + p.h - y / y_top * p.h; };
  for (double t : x_ticks) {
    absl::StrAppend(&out, "<line x1=\"", Num(px(t)), "\" y1=\"", Num(p.y), "\" x2=\"", Num(px(t)), "\" y2=\"",
                    Num(p.y + p.h), "\" stroke=\"#e0e0e0\"/>\n");
    absl::StrAppend(&out, "<text x=\"", Num(px(t)), "\" y=\"", Num(p.y + p.h + 15), "\" ", kFont,
                    " font-size=\"11\" text-anchor=\"middle\">", TickLabel(t), "</text>\n");
  }
  for (double t : y_ticks) {
    absl::StrAppend(&out, "<line x1=\"", Num(p.x), "\" y1=\"", Num(py(t)), "\" x2=\"", Num(p.x + p.w), "\" y2=\"",
                    Num(py(t)), "\" stroke=\"#e0e0e0\"/>\n");
    absl::StrAppend(&out, "<text x=\"", Num(p.x - 6), "\" y=\"", Num(py(t) + 4), "\" ", kFont,
                    " font-size=\"11\" text-anchor=\"end\">", TickLabel(t), "</text>\n");
  }
  absl::StrAppend(&out, "<text x=\"", Num(p.x + p.w / 2), "\" y=\"", Num(p.y + p.h + 32), "\" ", kFont,
                  " font-size=\"12\" text-anchor=\"middle\">", XmlEscape(x_label), "</text>\n");
  absl::StrAppend(&out, "<text x=\"", Num(p.x - 42), "\" y=\"", Num(p.y + p.h / 2), "\" ", kFont,
                  " font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 ", Num(p.x - 42), " ",
                  Num(p.y + p.h / 2), ")\">", XmlEscape(y_label), "</text>\n");
  bool any = false;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    if (s.points.empty()) continue;
    any = true;
    std::string points;
    for (const auto& [x, y] : s.points) absl::StrAppend(&points, Num(px(x)), ",", Num(py(y)), " ");
    absl::StrAppend(&out, "<polyline fill=\"none\" stroke=\"", s.color, "\" stroke-width=\"2\" points=\"", points,
                    "\"/>\n");
    if (!s.label.empty()) {
      // Bottom right: below a CDF's top and under a throughput line.
      const double ly = p.y + p.h - 10 - 16 * static_cast<double>(series.size() - 1 - i);
      absl::StrAppend(&out, "<rect x=\"", Num(p.x + p.w - 156), "\" y=\"", Num(ly - 12), "\" width=\"152\" height=\"16\" fill=\"#ffffff\" fill-opacity=\"0.85\"/>\n");
      absl::StrAppend(&out, "<line x1=\"", Num(p.x + p.w - 150), "\" y1=\"", Num(ly - 4), "\" x2=\"",
                      Num(p.x + p.w - 130), "\" y2=\"", Num(ly - 4), "\" stroke=\"", s.color,
                      "\" stroke-width=\"2\"/>\n");
      absl::StrAppend(&out, "<text x=\"", Num(p.x + p.w - 124), "\" y=\"", Num(ly), "\" ", kFont,
                      " font-size=\"11\">", XmlEscape(s.label), "</text>\n");
    }
  }
  if (!any) {
    absl::StrAppend(&out, "<text x=\"", Num(p.x + p.w / 2), "\" y=\"", Num(p.y + p.h / 2), "\" ", kFont,
                    " font-size=\"13\" fill=\"#888888\" text-anchor=\"middle\">no data</text>\n");
  }
  out += "</g>\n";
  return out;
}

// A CDF as at most ~400 points taken at evenly spaced quantiles.
Series Cdf(const Distribution& d, const std::string& label, const std::string& color) {
  Series s{label, color, {}};
  const size_t n = d.sorted_ms.size();
  if (n == 0) return s;
  const size_t steps = std::min<size_t>(n, 400);
  s.points.emplace_back(d.sorted_ms.front(), 0);
  for (size_t k = 1; k <= steps; ++k) {
    const size_t rank = (k * n + steps - 1) / steps;  // 1-based rank reaching fraction k/steps
    s.points.emplace_back(d.sorted_ms[rank - 1], static_cast<double>(rank) / static_cast<double>(n));
  }
  return s;
}

std::string CdfPanel(const Panel& p, const std::string& title, const Distribution& d, const std::string& color) {
  Series s = Cdf(d, d.count > 0 ? absl::StrFormat("p50 %.1f, p99 %.1f ms", d.median_ms, d.p99_ms) : "", color);
  const double x_max = d.count > 0 ? std::max(d.max_ms, 1e-3) : 1;
  return Plot(p, title, "milliseconds", "fraction of requests", {s}, x_max, 1, /*y_fraction=*/true);
}

}  // namespace

std::string RenderSvg(const Report& r) {
  const Summary& s = r.summary;
  std::string out = absl::StrCat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"",
      kWidth, "\" height=\"", kHeight, "\" viewBox=\"0 0 ", kWidth, " ", kHeight, "\">\n");
  absl::StrAppend(&out, "<rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>\n");
  absl::StrAppend(&out, "<text x=\"20\" y=\"26\" ", kFont, " font-size=\"16\" font-weight=\"bold\">",
                  XmlEscape(absl::StrCat("moe-loadgen: ", r.backend)), "</text>\n");
  absl::StrAppend(
      &out, "<text x=\"20\" y=\"46\" ", kFont, " font-size=\"12\">",
      XmlEscape(absl::StrFormat("%s | %s | %d ok, %d failed in %.1f s | %.1f req/s, %.1f output tok/s", r.traffic,
                                r.workload, s.completed, s.failed, s.duration_s, s.request_throughput,
                                s.output_throughput)),
      "</text>\n");
  const double w = 370, h = 220;
  out += CdfPanel({80, 100, w, h}, "TTFT (CDF)", s.ttft, "#1f77b4");
  out += CdfPanel({560, 100, w, h}, "TPOT (CDF)", s.tpot, "#2ca02c");
  out += CdfPanel({80, 410, w, h}, "End-to-end latency (CDF)", s.e2e, "#d62728");
  Series tokens{"output tokens/s", "#9467bd", {}};
  for (size_t i = 0; i < s.output_tokens_per_s.size(); ++i) {
    tokens.points.emplace_back(static_cast<double>(i), s.output_tokens_per_s[i]);
    tokens.points.emplace_back(static_cast<double>(i + 1), s.output_tokens_per_s[i]);
  }
  const double t_max = std::max(1.0, static_cast<double>(s.output_tokens_per_s.size()));
  const double y_max = s.output_tokens_per_s.empty()
                           ? 1
                           : std::max(1.0, *std::max_element(s.output_tokens_per_s.begin(), s.output_tokens_per_s.end()));
  out += Plot({560, 410, w, h}, "Throughput over time", "seconds since the first request", "output tokens/s",
              {tokens}, t_max, y_max, /*y_fraction=*/false);
  out += "</svg>\n";
  return out;
}

}  // namespace moe::loadgen
