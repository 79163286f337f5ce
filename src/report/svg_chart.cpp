// Line charts as inline SVG: axes with "nice" ticks, grid lines, axis labels, a legend, and a
// marker per value whose tooltip gives the exact number.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "lenz/report.h"

namespace lenz {
namespace {

// A tick step of 1, 2 or 5 times a power of ten giving about `target` intervals over `range`.
double nice_step(double range, double target) {
    const double raw = range / target;
    const double power = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / power;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
}

std::string number(double v, int decimals) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    // A tick reached by adding steps can land a hair below zero and print as "-0".
    const std::string text = buf;
    if (text[0] == '-' && text.find_first_not_of("-0.") == std::string::npos) return text.substr(1);
    return text;
}

int decimals_for(double step) {
    return std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
}

}  // namespace

std::string svg_line_chart(const LineChart& chart) {
    const double W = static_cast<double>(chart.width), H = static_cast<double>(chart.height);
    const double left = 64, right = 16, top = 40, bottom = 46;
    const double pw = W - left - right, ph = H - top - bottom;

    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const ChartSeries& s : chart.series)
        for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
            if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
            x0 = std::min(x0, s.x[i]);
            x1 = std::max(x1, s.x[i]);
            y0 = std::min(y0, s.y[i]);
            y1 = std::max(y1, s.y[i]);
        }
    if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // no data yet: empty axes
    if (x1 - x0 < 1e-12) x0 -= chart.integer_x ? 1 : 0.5, x1 += chart.integer_x ? 1 : 0.5;
    if (y1 - y0 < 1e-12) y0 -= 0.05 * std::max(1e-3, std::abs(y0)), y1 += 0.05 * std::max(1e-3, std::abs(y1));
    // Round the y range out to whole ticks, so the top and bottom lines carry labels.
    double y_step = nice_step(y1 - y0, 5);
    y0 = std::floor(y0 / y_step + 1e-9) * y_step;
    y1 = std::ceil(y1 / y_step - 1e-9) * y_step;
    if (chart.percent) y0 = std::max(0.0, y0), y1 = std::min(1.0, y1);
    if (y1 - y0 < 1e-12) y1 = y0 + y_step;
    double x_step = nice_step(x1 - x0, 8);
    if (chart.integer_x) x_step = std::max(1.0, std::round(x_step));

    auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
    auto py = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * ph; };
    auto value_text = [&](double v, int decimals) {
        return chart.percent ? number(100 * v, std::max(0, decimals - 2)) + " %" : number(v, decimals);
    };

    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + number(W, 0) +
                      "\" height=\"" + number(H, 0) + "\" viewBox=\"0 0 " + number(W, 0) + " " +
                      number(H, 0) + "\" role=\"img\" aria-label=\"" + html_escape(chart.title) + "\">\n";
    svg += "<text x=\"" + number(left, 0) + "\" y=\"20\" class=\"chart-title\">" + html_escape(chart.title) +
           "</text>\n";

    // Grid lines and tick labels.
    const int y_decimals = decimals_for(y_step);
    for (double y = y0; y <= y1 + y_step * 1e-6; y += y_step) {
        const std::string yy = number(py(y), 1);
        svg += "<line class=\"grid\" x1=\"" + number(left, 1) + "\" x2=\"" + number(left + pw, 1) +
               "\" y1=\"" + yy + "\" y2=\"" + yy + "\"/>";
        svg += "<text class=\"tick\" x=\"" + number(left - 6, 1) + "\" y=\"" + yy +
               "\" text-anchor=\"end\" dominant-baseline=\"middle\">" + value_text(y, y_decimals) +
               "</text>\n";
    }
    const int x_decimals = chart.integer_x ? 0 : decimals_for(x_step);
    for (double x = std::ceil(x0 / x_step - 1e-9) * x_step; x <= x1 + x_step * 1e-6; x += x_step) {
        const std::string xx = number(px(x), 1);
        svg += "<line class=\"tickmark\" x1=\"" + xx + "\" x2=\"" + xx + "\" y1=\"" + number(top + ph, 1) +
               "\" y2=\"" + number(top + ph + 5, 1) + "\"/>";
        svg += "<text class=\"tick\" x=\"" + xx + "\" y=\"" + number(top + ph + 18, 1) +
               "\" text-anchor=\"middle\">" + number(x, x_decimals) + "</text>\n";
    }
    // Axes and their labels.
    svg += "<line class=\"axis\" x1=\"" + number(left, 1) + "\" x2=\"" + number(left, 1) + "\" y1=\"" +
           number(top, 1) + "\" y2=\"" + number(top + ph, 1) + "\"/>";
    svg += "<line class=\"axis\" x1=\"" + number(left, 1) + "\" x2=\"" + number(left + pw, 1) + "\" y1=\"" +
           number(top + ph, 1) + "\" y2=\"" + number(top + ph, 1) + "\"/>\n";
    svg += "<text class=\"axis-label\" x=\"" + number(left + pw / 2, 1) + "\" y=\"" + number(H - 6, 1) +
           "\" text-anchor=\"middle\">" + html_escape(chart.x_label) + "</text>\n";
    svg += "<text class=\"axis-label\" transform=\"translate(14 " + number(top + ph / 2, 1) +
           ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(chart.y_label) + "</text>\n";

    // The series, each a line with a marker per value.
    for (const ChartSeries& s : chart.series) {
        std::string points;
        std::string markers;
        for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
            if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
            const std::string p = number(px(s.x[i]), 1) + "," + number(py(s.y[i]), 1);
            points += (points.empty() ? "" : " ") + p;
            markers += "<circle cx=\"" + number(px(s.x[i]), 1) + "\" cy=\"" + number(py(s.y[i]), 1) +
                       "\" r=\"3.5\" fill=\"" + s.color + "\"><title>" + html_escape(s.name) + ", " +
                       html_escape(chart.x_label) + " " + number(s.x[i], x_decimals) + ": " +
                       (chart.percent ? percent_text(s.y[i]) : number(s.y[i], 4)) + "</title></circle>";
        }
        svg += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"2\"" +
               (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + " points=\"" + points + "\"/>\n" + markers +
               "\n";
    }
    // Legend, top right, one entry per series.
    double lx = left + pw;
    for (auto it = chart.series.rbegin(); it != chart.series.rend(); ++it) {
        lx -= 7.0 * static_cast<double>(it->name.size()) + 40;
        svg += "<line x1=\"" + number(lx, 1) + "\" x2=\"" + number(lx + 22, 1) +
               "\" y1=\"16\" y2=\"16\" stroke=\"" + it->color + "\" stroke-width=\"2\"" +
               (it->dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>";
        svg += "<circle cx=\"" + number(lx + 11, 1) + "\" cy=\"16\" r=\"3.5\" fill=\"" + it->color + "\"/>";
        svg += "<text class=\"legend\" x=\"" + number(lx + 28, 1) +
               "\" y=\"16\" dominant-baseline=\"middle\">" + html_escape(it->name) + "</text>\n";
    }
    svg += "</svg>";
    return svg;
}

}  // namespace lenz
