// Constant folding for ONNX import; see onnx_fold.h.
#include "formats/onnx_fold.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "lenz/shape.h"

namespace lenz::onnx_fold {

bool Folded::symbolic() const {
    return std::any_of(symbols.begin(), symbols.end(), [](Symbol s) { return s != Symbol::known; });
}

std::string dims_str(const std::vector<int64_t>& dims) {
    std::string s;
    for (int64_t d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
    return s.empty() ? "()" : s;
}

namespace {

int64_t element_count(const std::vector<int64_t>& dims) {
    int64_t n = 1;
    for (int64_t d : dims) {
        if (d < 0) throw FoldError("a dimension is negative (" + dims_str(dims) + ")");
        n = checked_mul(n, d, "tensor size");
    }
    return n;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
    std::vector<int64_t> s(dims.size(), 1);
    for (size_t k = dims.size(); k > 1; --k) s[k - 2] = s[k - 1] * dims[k - 1];
    return s;
}

// An axis in [-rank, rank), as ONNX allows, to [0, rank).
int64_t axis_in(int64_t axis, int64_t rank) {
    if (axis < -rank || axis >= rank)
        throw FoldError("axis " + std::to_string(axis) + " is outside the tensor's " + std::to_string(rank) +
                        " dimensions");
    return axis < 0 ? axis + rank : axis;
}

// Source offsets for every element of an output of `dims`, in order: element (k0, k1, ...) reads
// base + k0 * step[0] + k1 * step[1] + ...
std::vector<int64_t> strided_sources(const std::vector<int64_t>& dims, int64_t base,
                                     const std::vector<int64_t>& step) {
    const int64_t n = element_count(dims);
    std::vector<int64_t> src;
    src.reserve(static_cast<size_t>(n));
    std::vector<int64_t> index(dims.size(), 0);
    int64_t at = base;
    for (int64_t e = 0; e < n; ++e) {
        src.push_back(at);
        for (size_t a = dims.size(); a-- > 0;) {  // an odometer over the output's index
            if (++index[a] < dims[a]) {
                at += step[a];
                break;
            }
            at -= step[a] * (dims[a] - 1);
            index[a] = 0;
        }
    }
    return src;
}

Folded take(const Folded& v, std::vector<int64_t> dims, const std::vector<int64_t>& src) {
    Folded out{v.name, v.type, std::move(dims), {}, {}, {}};
    if (v.is_float()) {
        out.f.reserve(src.size());
        for (int64_t k : src) out.f.push_back(v.f[static_cast<size_t>(k)]);
        return out;
    }
    out.i.reserve(src.size());
    for (int64_t k : src) out.i.push_back(v.i[static_cast<size_t>(k)]);
    if (!v.symbols.empty())
        for (int64_t k : src) out.symbols.push_back(v.symbols[static_cast<size_t>(k)]);
    return out;
}

}  // namespace

const std::vector<int64_t>& plain_ints(const Folded& v, const std::string& what) {
    if (v.is_float()) throw FoldError(what + " '" + v.name + "' must be integers");
    if (v.symbolic())
        throw FoldError(what + " '" + v.name + "' depends on the batch size, which a Lenz model leaves free");
    return v.i;
}

Folded decode(const onnx::TensorProto& t, const std::string& name) {
    if (t.data_location() == onnx::TensorProto::EXTERNAL)  // the importer reads those first
        throw FoldError("tensor '" + name + "' is stored in an external file, which is not read here");
    Folded v{name, t.data_type(), {t.dims().begin(), t.dims().end()}, {}, {}, {}};
    const int64_t n = element_count(v.dims);
    // Sizes are checked against the data present before anything is allocated (a shape of two
    // billion values over a few bytes must not make import zero 8 GB first).
    const auto check_raw = [&](int64_t width) {
        if (static_cast<int64_t>(t.raw_data().size()) != checked_mul(width, n, "tensor size"))
            throw FoldError("tensor '" + name + "' holds " + std::to_string(t.raw_data().size()) +
                            " bytes, its shape needs " + std::to_string(width * n));
    };
    if (t.has_raw_data()) switch (t.data_type()) {
            case onnx::TensorProto::FLOAT:
            case onnx::TensorProto::INT32:
                check_raw(4);
                break;
            case onnx::TensorProto::INT64:
                check_raw(8);
                break;
            case onnx::TensorProto::BOOL:
            case onnx::TensorProto::INT8:
            case onnx::TensorProto::UINT8:
                check_raw(1);
                break;
            default:
                break;
        }
    const auto raw = [&](void* into) { std::memcpy(into, t.raw_data().data(), t.raw_data().size()); };
    const auto wrong = [&] { return FoldError("tensor '" + name + "' does not hold its shape's values"); };
    switch (t.data_type()) {
        case onnx::TensorProto::FLOAT:
            if (t.has_raw_data()) {
                v.f.resize(static_cast<size_t>(n));
                raw(v.f.data());
            } else if (t.float_data_size() == n) {
                v.f.assign(t.float_data().begin(), t.float_data().end());
            } else {
                throw wrong();
            }
            return v;
        case onnx::TensorProto::INT64:
            if (t.has_raw_data()) {
                v.i.resize(static_cast<size_t>(n));
                raw(v.i.data());
            } else if (t.int64_data_size() == n) {
                v.i.assign(t.int64_data().begin(), t.int64_data().end());
            } else {
                throw wrong();
            }
            return v;
        case onnx::TensorProto::INT32:
            if (t.has_raw_data()) {
                std::vector<int32_t> narrow(static_cast<size_t>(n));
                raw(narrow.data());
                v.i.assign(narrow.begin(), narrow.end());
            } else if (t.int32_data_size() == n) {
                v.i.assign(t.int32_data().begin(), t.int32_data().end());
            } else {
                throw wrong();
            }
            return v;
        case onnx::TensorProto::INT8:  // quantised weights and zero points (int32_data holds them unpacked)
        case onnx::TensorProto::UINT8:
            if (t.has_raw_data()) {
                for (char b : t.raw_data())
                    v.i.push_back(t.data_type() == onnx::TensorProto::INT8 ? static_cast<int8_t>(b)
                                                                           : static_cast<uint8_t>(b));
            } else if (t.int32_data_size() == n) {
                v.i.assign(t.int32_data().begin(), t.int32_data().end());
            } else {
                throw wrong();
            }
            return v;
        case onnx::TensorProto::BOOL:  // held as int64 0 and 1 (Dropout's training_mode)
            if (t.has_raw_data()) {
                std::vector<uint8_t> bytes(static_cast<size_t>(n));
                raw(bytes.data());
                for (uint8_t b : bytes) v.i.push_back(b != 0);
            } else if (t.int32_data_size() == n) {
                for (int32_t b : t.int32_data()) v.i.push_back(b != 0);
            } else {
                throw wrong();
            }
            v.type = onnx::TensorProto::INT64;
            return v;
        default:
            throw FoldError("tensor '" + name + "' has ONNX data type " + std::to_string(t.data_type()) +
                            "; Lenz reads float32, int64, int32, int8, uint8 and bool");
    }
}

void Folder::claim(int64_t elements) {
    if (elements > budget_)
        throw FoldError("folding its constants would hold more values than the file itself (" +
                        std::to_string(elements) + " more)");
    budget_ -= elements;
}

Folded Folder::gather(const Folded& data, const Folded& indices, int64_t axis_attr) {
    const int64_t rank = static_cast<int64_t>(data.dims.size());
    if (rank == 0) throw FoldError("cannot gather from a scalar");
    const int64_t axis = axis_in(axis_attr, rank), n = data.dims[static_cast<size_t>(axis)];
    const std::vector<int64_t>& index = plain_ints(indices, "the indices");
    std::vector<int64_t> dims(data.dims.begin(), data.dims.begin() + axis);
    dims.insert(dims.end(), indices.dims.begin(), indices.dims.end());
    dims.insert(dims.end(), data.dims.begin() + axis + 1, data.dims.end());
    claim(element_count(dims));
    const int64_t outer = element_count({data.dims.begin(), data.dims.begin() + axis});
    const int64_t inner = element_count({data.dims.begin() + axis + 1, data.dims.end()});
    std::vector<int64_t> src;
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t k : index) {
            if (k < -n || k >= n)
                throw FoldError("index " + std::to_string(k) + " is out of range for a dimension of " +
                                std::to_string(n));
            const int64_t at = k < 0 ? k + n : k;
            for (int64_t r = 0; r < inner; ++r) src.push_back((o * n + at) * inner + r);
        }
    return take(data, std::move(dims), src);
}

Folded Folder::concat(const std::vector<Folded>& parts, int64_t axis_attr) {
    if (parts.empty()) throw FoldError("has no inputs");
    const Folded& first = parts[0];
    const int64_t axis = axis_in(axis_attr, static_cast<int64_t>(first.dims.size()));
    std::vector<int64_t> dims = first.dims;
    dims[static_cast<size_t>(axis)] = 0;
    bool symbols = false;
    for (const Folded& p : parts) {
        bool fits = p.type == first.type && p.dims.size() == first.dims.size();
        for (size_t k = 0; fits && k < dims.size(); ++k)
            fits = static_cast<int64_t>(k) == axis || p.dims[k] == first.dims[k];
        if (!fits)
            throw FoldError("cannot join " + dims_str(first.dims) + " and " + dims_str(p.dims) +
                            " along axis " + std::to_string(axis));
        dims[static_cast<size_t>(axis)] =
            checked_add(dims[static_cast<size_t>(axis)], p.dims[static_cast<size_t>(axis)], "tensor size");
        symbols = symbols || !p.symbols.empty();
    }
    claim(element_count(dims));
    Folded out{first.name, first.type, dims, {}, {}, {}};
    const int64_t outer = element_count({dims.begin(), dims.begin() + axis});
    for (int64_t o = 0; o < outer; ++o)
        for (const Folded& p : parts) {
            const int64_t chunk = outer ? p.size() / outer : 0;
            const auto from = static_cast<ptrdiff_t>(o * chunk), to = static_cast<ptrdiff_t>((o + 1) * chunk);
            if (p.is_float()) {
                out.f.insert(out.f.end(), p.f.begin() + from, p.f.begin() + to);
                continue;
            }
            out.i.insert(out.i.end(), p.i.begin() + from, p.i.begin() + to);
            if (!symbols) continue;
            if (p.symbols.empty())
                out.symbols.insert(out.symbols.end(), static_cast<size_t>(chunk), Symbol::known);
            else
                out.symbols.insert(out.symbols.end(), p.symbols.begin() + from, p.symbols.begin() + to);
        }
    return out;
}

// starts, ends, axes and steps as Slice takes them; axes and steps may be empty (all, 1).
Folded Folder::slice(const Folded& data, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                     std::vector<int64_t> axes, std::vector<int64_t> steps) {
    const int64_t rank = static_cast<int64_t>(data.dims.size());
    if (axes.empty())
        for (int64_t a = 0; a < static_cast<int64_t>(starts.size()); ++a) axes.push_back(a);
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
        throw FoldError("starts, ends, axes and steps differ in length");
    std::vector<int64_t> dims = data.dims, begin(data.dims.size(), 0), step(data.dims.size(), 1);
    std::vector<bool> seen(data.dims.size(), false);
    for (size_t j = 0; j < starts.size(); ++j) {
        const auto a = static_cast<size_t>(axis_in(axes[j], rank));
        if (seen[a]) throw FoldError("axis " + std::to_string(a) + " is sliced twice");
        seen[a] = true;
        const int64_t dim = data.dims[a], st = steps[j];
        if (st == 0 || st == std::numeric_limits<int64_t>::min()) throw FoldError("a step is 0 or too large");
        int64_t s = starts[j] < 0 ? starts[j] + dim : starts[j], e = ends[j] < 0 ? ends[j] + dim : ends[j];
        int64_t count = 0;
        if (dim > 0 && st > 0) {
            s = std::clamp<int64_t>(s, 0, dim);
            e = std::clamp<int64_t>(e, 0, dim);
            count = e > s ? (e - s - 1) / st + 1 : 0;
        } else if (dim > 0) {
            s = std::clamp<int64_t>(s, 0, dim - 1);
            e = std::clamp<int64_t>(e, -1, dim - 1);
            count = s > e ? (s - e - 1) / -st + 1 : 0;
        }
        dims[a] = count;
        begin[a] = s;
        step[a] = count > 1 ? st : 1;  // a step that is never taken could overflow below
    }
    claim(element_count(dims));
    const std::vector<int64_t> stride = strides_of(data.dims);
    int64_t base = 0;
    std::vector<int64_t> jump(dims.size());
    for (size_t a = 0; a < dims.size(); ++a) {
        if (dims[a] == 0) return take(data, dims, {});
        base += begin[a] * stride[a];
        jump[a] = step[a] * stride[a];
    }
    return take(data, dims, strided_sources(dims, base, jump));
}

Folded Folder::transpose(const Folded& data, std::vector<int64_t> perm) {
    const size_t rank = data.dims.size();
    if (perm.empty())
        for (size_t a = rank; a-- > 0;) perm.push_back(static_cast<int64_t>(a));
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    bool permutation = sorted.size() == rank;
    for (size_t a = 0; permutation && a < rank; ++a) permutation = sorted[a] == static_cast<int64_t>(a);
    if (!permutation)
        throw FoldError("perm is not a permutation of the tensor's " + std::to_string(rank) + " axes");
    claim(data.size());
    const std::vector<int64_t> stride = strides_of(data.dims);
    std::vector<int64_t> dims, jump;
    for (int64_t p : perm) {
        dims.push_back(data.dims[static_cast<size_t>(p)]);
        jump.push_back(stride[static_cast<size_t>(p)]);
    }
    return take(data, dims, strided_sources(dims, 0, jump));
}

Folded Folder::reshape(Folded data, const std::vector<int64_t>& shape, bool allow_zero) {
    std::vector<int64_t> dims;
    int64_t inferred = -1, known = 1;
    for (size_t k = 0; k < shape.size(); ++k) {
        int64_t d = shape[k];
        if (d == 0 && !allow_zero) {  // 0 copies the input's dimension
            if (k >= data.dims.size()) throw FoldError("a 0 in the shape has no dimension to copy");
            d = data.dims[k];
        }
        if (d == -1) {
            if (inferred >= 0) throw FoldError("the shape has more than one -1");
            inferred = static_cast<int64_t>(k);
            d = 1;
        } else if (d < 0) {
            throw FoldError("the shape has a negative dimension");
        }
        known = checked_mul(known, d, "tensor size");
        dims.push_back(d);
    }
    const int64_t n = data.size();
    if (inferred >= 0 && known > 0 && n % known == 0) dims[static_cast<size_t>(inferred)] = n / known;
    if (element_count(dims) != n)
        throw FoldError("cannot reshape " + dims_str(data.dims) + " to " + dims_str(dims));
    data.dims = dims;
    claim(n);
    return data;
}

Folded Folder::unsqueeze(Folded data, const std::vector<int64_t>& axes) {
    const int64_t rank = static_cast<int64_t>(data.dims.size() + axes.size());
    std::vector<bool> one(static_cast<size_t>(rank), false);
    for (int64_t a : axes) {
        const auto at = static_cast<size_t>(axis_in(a, rank));
        if (one[at]) throw FoldError("axis " + std::to_string(a) + " is given twice");
        one[at] = true;
    }
    std::vector<int64_t> dims;
    size_t from = 0;
    for (bool is_new : one) dims.push_back(is_new ? 1 : data.dims[from++]);
    data.dims = dims;
    claim(data.size());
    return data;
}

Folded Folder::squeeze(Folded data, const std::vector<int64_t>& axes) {
    const int64_t rank = static_cast<int64_t>(data.dims.size());
    std::vector<bool> drop(data.dims.size(), axes.empty());
    for (int64_t a : axes) drop[static_cast<size_t>(axis_in(a, rank))] = true;
    std::vector<int64_t> dims;
    for (size_t k = 0; k < data.dims.size(); ++k) {
        if (drop[k] && data.dims[k] != 1 && !axes.empty())
            throw FoldError("axis " + std::to_string(k) + " has size " + std::to_string(data.dims[k]) +
                            ", not 1");
        if (!drop[k] || data.dims[k] != 1) dims.push_back(data.dims[k]);
    }
    data.dims = dims;
    claim(data.size());
    return data;
}

Folded Folder::cast(Folded v, int64_t to) {
    claim(v.size());
    if (to == onnx::TensorProto::FLOAT) {
        if (!v.is_float()) {
            plain_ints(v, "the tensor cast to float");
            v.f.assign(v.i.begin(), v.i.end());
            v.i.clear();
        }
    } else if (to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32) {
        const auto [low, high] = to == onnx::TensorProto::INT64 ? std::pair<double, double>{-0x1p63, 0x1p63}
                                                                : std::pair<double, double>{-0x1p31, 0x1p31};
        if (v.is_float()) {
            for (float x : v.f) {
                if (!(x >= low && x < high)) throw FoldError("a value does not fit the integer type");
                v.i.push_back(static_cast<int64_t>(x));  // toward zero, as ONNX casts
            }
            v.f.clear();
        } else if (to == onnx::TensorProto::INT32 && v.symbols.empty()) {
            for (int64_t x : v.i)
                if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max())
                    throw FoldError("a value does not fit int32");
        }
    } else {
        throw FoldError("casts to ONNX data type " + std::to_string(to) +
                        ", not to float32, int64 or int32, which is all Lenz folds");
    }
    v.type = static_cast<int32_t>(to);
    return v;
}

// Add, Sub, Mul or Div with NumPy broadcasting.
Folded Folder::arithmetic(const std::string& op, const Folded& a, const Folded& b) {
    if (a.type != b.type) throw FoldError("the operands have different types");
    const size_t rank = std::max(a.dims.size(), b.dims.size());
    std::vector<int64_t> dims(rank), a_step(rank, 0), b_step(rank, 0);
    const std::vector<int64_t> a_stride = strides_of(a.dims), b_stride = strides_of(b.dims);
    for (size_t k = 0; k < rank; ++k) {  // aligned from the right
        const size_t from_right = rank - k;
        const bool in_a = from_right <= a.dims.size(), in_b = from_right <= b.dims.size();
        const int64_t da = in_a ? a.dims[a.dims.size() - from_right] : 1;
        const int64_t db = in_b ? b.dims[b.dims.size() - from_right] : 1;
        if (da != db && da != 1 && db != 1)
            throw FoldError("cannot broadcast " + dims_str(a.dims) + " with " + dims_str(b.dims));
        dims[k] = da == 1 ? db : da;
        if (in_a && da != 1) a_step[k] = a_stride[a.dims.size() - from_right];
        if (in_b && db != 1) b_step[k] = b_stride[b.dims.size() - from_right];
    }
    claim(element_count(dims));
    const std::vector<int64_t> ia = strided_sources(dims, 0, a_step), ib = strided_sources(dims, 0, b_step);
    Folded out{a.name, a.type, dims, {}, {}, {}};
    if (!a.symbols.empty() || !b.symbols.empty()) out.symbols.assign(ia.size(), Symbol::known);
    const char o = op == "Add" ? '+' : op == "Sub" ? '-' : op == "Mul" ? '*' : '/';
    for (size_t k = 0; k < ia.size(); ++k) {
        const auto p = static_cast<size_t>(ia[k]), q = static_cast<size_t>(ib[k]);
        if (a.is_float()) {
            const float x = a.f[p], y = b.f[q];
            out.f.push_back(o == '+' ? x + y : o == '-' ? x - y : o == '*' ? x * y : x / y);
            continue;
        }
        // Anything computed from the batch size is unknown, whatever its value would be.
        const bool unknown = (!a.symbols.empty() && a.symbols[p] != Symbol::known) ||
                             (!b.symbols.empty() && b.symbols[q] != Symbol::known);
        if (unknown) {
            out.symbols[k] = Symbol::unknown;
            out.i.push_back(0);
            continue;
        }
        const int64_t x = a.i[p], y = b.i[q];
        int64_t r = 0;
        bool overflow = false;
        if (o == '+') overflow = __builtin_add_overflow(x, y, &r);
        if (o == '-') overflow = __builtin_sub_overflow(x, y, &r);
        if (o == '*') overflow = __builtin_mul_overflow(x, y, &r);
        if (o == '/') {
            if (y == 0) throw FoldError("divides an integer by zero");
            overflow = x == std::numeric_limits<int64_t>::min() && y == -1;
            if (!overflow) r = x / y;
        }
        if (overflow) throw FoldError("integer arithmetic overflows");
        out.i.push_back(r);
    }
    return out;
}

Folded Folder::constant_of_shape(const Folded& shape, const Folded& value) {
    const std::vector<int64_t>& dims = plain_ints(shape, "the shape");
    if (value.size() != 1) throw FoldError("the value must be one element");
    const int64_t n = element_count(dims);
    claim(n);
    Folded out{shape.name, value.type, dims, {}, {}, {}};
    if (value.is_float())
        out.f.assign(static_cast<size_t>(n), value.f[0]);
    else
        out.i.assign(static_cast<size_t>(n), value.i[0]);
    return out;
}

Folded Folder::dequantize(const Folded& q, const Folded& scale, const Folded* zero_point, int64_t axis_attr) {
    if (q.type != onnx::TensorProto::INT8 && q.type != onnx::TensorProto::UINT8)
        throw FoldError("dequantises int8 or uint8 values only");
    if (!scale.is_float() || (zero_point && zero_point->is_float()))
        throw FoldError("needs a float32 scale and an integer zero point");
    const int64_t n = q.size(), slices = scale.size();
    if (zero_point && zero_point->size() != slices)
        throw FoldError("the zero points and scales differ in number");
    // Per tensor, or one scale per slice along the axis.
    int64_t inner = 1;
    if (slices != 1) {
        const int64_t axis = axis_in(axis_attr, static_cast<int64_t>(q.dims.size()));
        if (q.dims[static_cast<size_t>(axis)] != slices)
            throw FoldError("has " + std::to_string(slices) + " scales for an axis of " +
                            std::to_string(q.dims[static_cast<size_t>(axis)]));
        for (size_t d = static_cast<size_t>(axis) + 1; d < q.dims.size(); ++d) inner *= q.dims[d];
    }
    claim(n);
    Folded out{q.name, onnx::TensorProto::FLOAT, q.dims, std::vector<float>(static_cast<size_t>(n)), {}, {}};
    for (int64_t k = 0; k < n; ++k) {
        const int64_t slice = slices == 1 ? 0 : k / inner % slices;
        const int64_t zero = zero_point ? zero_point->i[static_cast<size_t>(slice)] : 0;
        out.f[static_cast<size_t>(k)] =
            static_cast<float>(q.i[static_cast<size_t>(k)] - zero) * scale.f[static_cast<size_t>(slice)];
    }
    return out;
}

}  // namespace lenz::onnx_fold
