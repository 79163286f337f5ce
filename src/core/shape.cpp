#include "lenz/shape.h"

#include <cstdio>

#include "lenz/error.h"

namespace lenz {

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        throw ShapeError(std::string(what) + " overflows 64 bits (" + std::to_string(a) + " x " +
                         std::to_string(b) + ")");
    return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        throw ShapeError(std::string(what) + " overflows 64 bits (" + std::to_string(a) + " + " +
                         std::to_string(b) + ")");
    return r;
}

int64_t Shape::elements() const {
    return checked_mul(checked_mul(h, w, "shape"), c, "shape");
}

std::string Shape::str() const {
    return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
}

std::string with_commas(int64_t v) {
    std::string digits = std::to_string(v);
    if (v < 0) digits.erase(0, 1);
    std::string out;
    int n = static_cast<int>(digits.size());
    for (int i = 0; i < n; ++i) {
        out += digits[i];
        if ((n - i - 1) % 3 == 0 && i != n - 1) out += ',';
    }
    return v < 0 ? "-" + out : out;
}

std::string count_of(int64_t n, const std::string& noun) {
    const bool sibilant = !noun.empty() && noun.back() == 's';  // "class" -> "classes"
    return with_commas(n) + " " + noun + (n == 1 ? "" : sibilant ? "es" : "s");
}

std::string human_bytes(int64_t bytes) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1000.0 && u < 6) {
        v /= 1000.0;
        ++u;
    }
    char buf[32];
    if (u == 0)
        std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
    else
        std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

}  // namespace lenz
