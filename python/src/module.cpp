// lenz._core, the Python module's compiled part: the library's models, training, evaluation, costs and
// pictures on NumPy arrays. python/lenz/__init__.py makes the public API of it; nothing here is
// called by users directly. Images are (N, H, W, C) arrays, C-contiguous, of uint8 pixels or float32
// pixels / 255 (what the ONNX export takes). The engine computes with the GIL released, one call at a
// time per model.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "lenz/checkpoint.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/evaluate.h"
#include "lenz/finetune.h"
#include "lenz/model_text.h"
#include "lenz/onnx.h"
#include "lenz/quantize.h"
#include "lenz/report.h"
#include "lenz/summary.h"
#include "lenz/threads.h"
#include "lenz/train.h"
#include "lenz/train_options.h"

namespace py = pybind11;

namespace lenz::python {
namespace {

std::string shape_text(const std::vector<int64_t>& dims) {
    std::string s = "(";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + (dims.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> shape_of(const py::array& a) {
    return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

std::string type_name(const py::handle& x) {
    return py::str(py::type::handle_of(x).attr("__name__"));
}

// float32 images hold pixels / 255, from 0 to 1, in predict, evaluate and fit alike: anything else
// would give saturated or NaN probabilities that look like answers. The error names the first bad
// value and says what the array looks like (pixels 0-255, or already normalised).
void check_float_pixels(const float* values, int64_t count, Shape in, const std::string& what) {
    const int64_t E = in.elements();
    float lowest = 0, highest = 0;
    for (int64_t i = 0; i < count * E; ++i) {
        const float v = values[i];
        if (std::isfinite(v)) {
            lowest = std::min(lowest, v);
            highest = std::max(highest, v);
            continue;
        }
        const int64_t e = i % E;
        throw Error(what + ": image " + std::to_string(i / E) + " has " +
                    (std::isnan(v) ? "a NaN" : "an infinite") + " pixel at row " +
                    std::to_string(e / (in.w * in.c)) + ", column " + std::to_string(e / in.c % in.w) +
                    ", channel " + std::to_string(e % in.c));
    }
    if (lowest >= 0 && highest <= 1) return;
    std::string hint;
    if (lowest >= 0 && highest <= 255)
        hint = "these look like pixels from 0 to 255: pass x.astype(np.uint8), or x / 255";
    else if (lowest < 0)
        hint =
            "these look normalised (mean and standard deviation taken off): pass the pixels / 255, as "
            "Lenz normalises by itself with the training set's statistics";
    else
        hint = "pass pixels / 255, from 0 to 1, or uint8 pixels from 0 to 255";
    char range[96];
    std::snprintf(range, sizeof range, "%g to %g", static_cast<double>(lowest), static_cast<double>(highest));
    throw Error(what + ": float32 images hold pixels / 255, from 0 to 1; these range from " + range + " (" +
                hint + ")");
}

// A batch of images handed in from Python, checked against the model's input: read in place.
struct ImageArray {
    py::array array;
    const uint8_t* pixels = nullptr;  // uint8 (N, H, W, C), or
    const float* values = nullptr;    // float32 (N, H, W, C), pixels / 255
    int64_t count = 0;
};

ImageArray image_array(const py::handle& x, Shape in, const std::string& what) {
    const std::string expected = "an array of shape (N, " + std::to_string(in.h) + ", " +
                                 std::to_string(in.w) + ", " + std::to_string(in.c) +
                                 ") (images, height, width, channels)";
    if (!py::isinstance<py::array>(x))
        throw Error(what + ": expected images as a NumPy array, " + expected + ", got " + type_name(x));
    ImageArray images;
    images.array = py::reinterpret_borrow<py::array>(x);
    const py::array& a = images.array;
    const bool u8 = py::isinstance<py::array_t<uint8_t>>(a), f32 = py::isinstance<py::array_t<float>>(a);
    if (!u8 && !f32)
        throw Error(what + ": expected uint8 pixels (0-255) or float32 pixels / 255, got dtype " +
                    std::string(py::str(a.dtype())) + " (x.astype(np.float32) / 255, or x.astype(np.uint8))");
    if (a.ndim() != 4 || a.shape(1) != in.h || a.shape(2) != in.w || a.shape(3) != in.c) {
        const bool pytorch_order =
            a.ndim() == 4 && a.shape(1) == in.c && a.shape(2) == in.h && a.shape(3) == in.w;
        throw Error(
            what + ": expected " + expected + ", got shape " + shape_text(shape_of(a)) +
            (pytorch_order ? ", PyTorch's (N, C, H, W) order: x.transpose(0, 2, 3, 1) gives Lenz's" : ""));
    }
    if (!(a.flags() & py::array::c_style))
        throw Error(what + ": expected a C-contiguous array, got one with strides " +
                    shape_text(std::vector<int64_t>(a.strides(), a.strides() + a.ndim())) +
                    " (np.ascontiguousarray(x) makes one)");
    images.count = a.shape(0);
    if (u8)
        images.pixels = static_cast<const uint8_t*>(a.data());
    else
        images.values = static_cast<const float*>(a.data());
    if (f32) check_float_pixels(images.values, images.count, in, what);
    return images;
}

// Image i of `images` (H, W, C) -> out (C, H, W), normalised as training did: uint8 pixels through
// normalize_image, as lenz predict does; float32 (pixels / 255) by the same map without the 255.
// scratch: (C, H, W) bytes.
void load_image(const ImageArray& images, int64_t i, Shape in, const Normalization& norm, uint8_t* scratch,
                float* out) {
    const int64_t plane = in.h * in.w, E = plane * in.c;
    if (images.pixels) {
        const uint8_t* src = images.pixels + i * E;
        for (int64_t c = 0; c < in.c; ++c)
            for (int64_t p = 0; p < plane; ++p) scratch[c * plane + p] = src[p * in.c + c];
        normalize_image(scratch, in.c, plane, norm, out);
        return;
    }
    const float* src = images.values + i * E;
    for (int64_t c = 0; c < in.c; ++c) {
        const float mean = norm.mean[static_cast<size_t>(c)],
                    scale = 1.0f / norm.stddev[static_cast<size_t>(c)];
        for (int64_t p = 0; p < plane; ++p) out[c * plane + p] = (src[p * in.c + c] - mean) * scale;
    }
}

std::vector<int32_t> label_array(const py::handle& y, int64_t count, const std::string& what) {
    if (!py::isinstance<py::array>(y))
        throw Error(what + ": expected labels as a NumPy array of " + std::to_string(count) +
                    " integers, got " + type_name(y));
    const py::array a = py::reinterpret_borrow<py::array>(y);
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u')
        throw Error(what + ": expected integer labels (class numbers from 0), got dtype " +
                    std::string(py::str(a.dtype())));
    if (a.ndim() != 1 || a.shape(0) != count)
        throw Error(what + ": expected labels of shape (" + std::to_string(count) +
                    ",), one per image, got " + shape_text(shape_of(a)));
    const auto labels = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    std::vector<int32_t> out(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
        const int64_t v = labels.at(i);
        if (v < 0 || v > INT32_MAX)
            throw Error(what + ": label " + std::to_string(v) + " of image " + std::to_string(i) +
                        " is not a class number (0, 1, ...)");
        out[static_cast<size_t>(i)] = static_cast<int32_t>(v);
    }
    return out;
}

// Masks (N, H, W) of integers, each pixel's class or 255 (ignored), at the model's input size.
std::vector<uint8_t> mask_array(const py::array& a, int64_t count, Shape in, const std::string& what) {
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u')
        throw Error(what +
                    ": expected integer masks (a class from 0 at every pixel, 255 ignored), got dtype " +
                    std::string(py::str(a.dtype())));
    if (a.shape(0) != count || a.shape(1) != in.h || a.shape(2) != in.w)
        throw Error(what + ": expected masks of shape (" + std::to_string(count) + ", " +
                    std::to_string(in.h) + ", " + std::to_string(in.w) +
                    "), one per image at the model's input size, got " + shape_text(shape_of(a)));
    const auto values = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    std::vector<uint8_t> out(static_cast<size_t>(values.size()));
    const int64_t* v = values.data();
    for (size_t i = 0; i < out.size(); ++i) {
        if (v[i] < 0 || v[i] > 255)
            throw Error(what + ": mask value " + std::to_string(v[i]) + " of image " +
                        std::to_string(static_cast<int64_t>(i) / (in.h * in.w)) +
                        " is neither a class (0, 1, ...) nor 255 (ignored)");
        out[i] = static_cast<uint8_t>(v[i]);
    }
    return out;
}

// The classes a model tells apart: a classifier's scores, or a segmentation model's channels.
int64_t classes_of(const Model& model, const std::string& what) {
    return segments(model) ? model.output_shape().c : class_count(model, what);
}

// Arrays as a data set: pixels planar (N, C, H, W) in 8 bits, as the library's data sets hold them;
// y is labels (N) or masks (N, H, W).
// float32 pixels / 255 are rounded to the nearest 1/255, within [0, 1].
ImageSet image_set(const py::handle& x, const py::handle& y, Shape in, const std::string& what) {
    const ImageArray images = image_array(x, in, what);
    ImageSet set;
    set.height = in.h;
    set.width = in.w;
    set.channels = in.c;
    if (py::isinstance<py::array>(y) && py::reinterpret_borrow<py::array>(y).ndim() == 3)
        set.masks = mask_array(py::reinterpret_borrow<py::array>(y), images.count, in, what);
    else
        set.labels = label_array(y, images.count, what);
    const int64_t plane = in.h * in.w, E = plane * in.c;
    set.pixels.resize(static_cast<size_t>(images.count * E));
    for (int64_t i = 0; i < images.count; ++i)
        for (int64_t p = 0; p < plane; ++p)
            for (int64_t c = 0; c < in.c; ++c) {
                uint8_t& dst = set.pixels[static_cast<size_t>(i * E + c * plane + p)];
                if (images.pixels) {
                    dst = images.pixels[i * E + p * in.c + c];
                    continue;
                }
                // in [0, 1]: image_array checked
                dst = static_cast<uint8_t>(std::lround(images.values[i * E + p * in.c + c] * 255.0f));
            }
    return set;
}

py::array_t<uint8_t> image_to_array(const Image& image) {
    py::array_t<uint8_t> a({image.height, image.width, image.channels});
    std::copy(image.pixels.begin(), image.pixels.end(), a.mutable_data());
    return a;
}

// (N, C, H, W) pixels of a data set -> (N, H, W, C) as NumPy users hold images.
py::array_t<uint8_t> set_to_array(const ImageSet& set) {
    py::array_t<uint8_t> a({set.size(), set.height, set.width, set.channels});
    uint8_t* out = a.mutable_data();
    const int64_t plane = set.height * set.width, C = set.channels, E = set.image_elements();
    for (int64_t i = 0; i < set.size(); ++i)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t p = 0; p < plane; ++p) out[i * E + p * C + c] = set.pixels[i * E + c * plane + p];
    return a;
}

// Labels (N,) int64, or for a segmentation set its masks (N, H, W) uint8.
py::array targets_to_array(const ImageSet& set) {
    if (set.segmentation()) {
        py::array_t<uint8_t> a({set.size(), set.height, set.width});
        std::copy(set.masks.begin(), set.masks.end(), a.mutable_data());
        return a;
    }
    py::array_t<int64_t> a(set.size());
    std::copy(set.labels.begin(), set.labels.end(), a.mutable_data());
    return a;
}

// fit's keyword options, by the table of lenz/train_options.h (the Python wrapper refuses a keyword
// the table lacks); None leaves an option at its default.
TrainOptionValues fit_options(const py::dict& options) {
    TrainOptionValues values;
    for (const auto& [key, given] : options) {
        const std::string keyword = py::str(key);
        const TrainOption* option = nullptr;
        for (const TrainOption& candidate : train_options())
            if (candidate.keyword() == keyword) option = &candidate;
        if (!option) throw Error("fit: unknown option '" + keyword + "'");
        if (given.is_none()) continue;
        OptionValue value;
        if (py::isinstance<py::bool_>(given)) {
            value = given.cast<bool>();
        } else if (PyIndex_Check(given.ptr())) {  // int, and NumPy's integers
            try {
                value = py::int_(py::reinterpret_borrow<py::object>(given)).cast<int64_t>();
            } catch (const py::cast_error&) {
                throw Error("fit: " + keyword + ": " + std::string(py::repr(given)) + " is out of range");
            }
        } else if (PyFloat_Check(given.ptr())) {
            value = given.cast<double>();
        } else if (py::isinstance<py::str>(given)) {
            value = given.cast<std::string>();
        } else {
            throw Error("fit: " + keyword + ": expected " + expected_value(*option) + ", got " +
                        std::string(py::repr(given)));
        }
        if (std::string problem = option_problem(*option, value); !problem.empty()) {
            if (problem.find(", got ") == std::string::npos)
                problem += ", got " + std::string(py::repr(given));
            throw Error("fit: " + keyword + ": " + problem);
        }
        values[option->name] = value;
    }
    return values;
}

py::dict epoch_dict(const EpochMetrics& m) {
    py::dict d;
    for (const MetricValue& v : epoch_values(m)) {
        if (v.kind == MetricValue::Kind::count)
            d[v.name] = static_cast<int64_t>(v.value);
        else if (v.kind == MetricValue::Kind::flag)
            d[v.name] = v.value != 0;
        else
            d[v.name] = v.value;
    }
    return d;
}

py::dict step_dict(const StepProgress& p) {
    py::dict d;
    d["epoch"] = p.epoch;
    d["epochs"] = p.epochs;
    d["batch"] = p.batch;
    d["batches"] = p.batches;
    d["step"] = p.step;
    d["loss"] = p.loss;
    d["accuracy"] = p.accuracy;
    d["images_per_second"] = p.images_per_second;
    d["seconds_left"] = p.seconds_left;
    return d;
}

// A model, with what predicting from images needs (class names, normalisation) and an inference
// runner kept between calls. One computation at a time: the runner's arena and the weights are shared.
class PyModel {
  public:
    PyModel(LoadedModel loaded, std::string name)
        : loaded_(std::make_unique<LoadedModel>(std::move(loaded))), name_(std::move(name)) {
        Normalization& norm = loaded_->info.normalization;
        if (norm.mean.empty()) {  // a fresh model: pixels / 255 as they are, as ONNX import assumes
            const auto C = static_cast<size_t>(model().input_shape().c);
            norm.mean.assign(C, 0.0f);
            norm.stddev.assign(C, 1.0f);
        }
    }

    Model& model() { return loaded_->model; }
    const std::string& name() const { return name_; }
    CheckpointInfo& info() { return loaded_->info; }

    py::tuple input_shape() {
        const Shape s = model().input_shape();
        return py::make_tuple(s.h, s.w, s.c);
    }
    int64_t outputs() {
        return segments(model()) ? model().output_shape().c : model().output_shape().elements();
    }

    // (JSON as lenz summary --json, the text table, HTML: the table and the derivation in <details>)
    py::tuple summary(int64_t batch, const std::string& optimizer, const std::string& dtype) {
        if (batch < 1) throw Error("summary: batch must be at least 1, got " + std::to_string(batch));
        const SummaryOptions options = summary_options(batch, dtype, parse_optimizer(optimizer).kind);
        Summary s;
        {
            py::gil_scoped_release release;
            std::lock_guard lock(mutex_);
            s = summarize(model(), options);
        }
        const std::string html =
            "<div class=\"lenz-summary\"><style>.lenz-summary td.num, .lenz-summary th.num "
            "{text-align: right} .lenz-summary .dim {color: #666}</style>\n<p><b>" +
            html_escape(name_) + "</b>: input " + s.input.str() + ", " +
            count_of(static_cast<int64_t>(s.layers.size()), "layer") + "</p>\n" + summary_table_html(s) +
            "<details><summary>How these figures come about</summary><pre>" +
            html_escape(summary_explanation(s)) + "</pre></details></div>";
        return py::make_tuple(summary_json(s, name_), format_summary(s, name_, false), html);
    }

    // Class probabilities, (N, K) for a classifier and (N, H, W, K) for a segmentation model; with
    // classes_only, the top class instead, (N) int64 or (N, H, W) uint8.
    py::array predict(const py::handle& x, int64_t batch, bool classes_only) {
        const std::string what = classes_only ? "segment" : "predict";
        if (batch < 1) throw Error(what + ": batch must be at least 1, got " + std::to_string(batch));
        const Shape in = model().input_shape();
        const bool maps = segments(model());
        if (classes_only && !maps)
            throw Error("segment: the model's output is " + model().output_shape().str() +
                        ", not a map at its input's size: predict gives a classifier's probabilities");
        const int64_t K = classes_of(model(), what), E = in.elements(), plane = maps ? in.h * in.w : 1;
        const ImageArray images = image_array(x, in, what);
        std::vector<py::ssize_t> shape{images.count};
        if (maps) shape.insert(shape.end(), {in.h, in.w});
        if (!classes_only) shape.push_back(K);
        py::array_t<float> probabilities(classes_only ? std::vector<py::ssize_t>{0} : shape);
        py::array_t<uint8_t> top(classes_only ? shape : std::vector<py::ssize_t>{0});
        float* out = probabilities.mutable_data();
        uint8_t* top_out = top.mutable_data();
        py::array result = classes_only
                               ? py::array(top)
                               : py::array(probabilities);  // moved out, never copied without the GIL
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        const int64_t chunk = std::min(batch, images.count);
        if (chunk == 0) return result;
        Inference& runner = inference(chunk);
        std::vector<float> input(static_cast<size_t>(chunk * E));
        std::vector<uint8_t> scratch(static_cast<size_t>(E));
        for (int64_t start = 0; start < images.count; start += chunk) {
            const int64_t n = std::min(chunk, images.count - start);
            for (int64_t i = 0; i < n; ++i)
                load_image(images, start + i, in, info().normalization, scratch.data(), input.data() + i * E);
            const float* y = runner.run(input.data(), n);
            // (N, K, H, W) scores to (N, H, W, K) probabilities, or the top class of each pixel.
            for (int64_t i = 0; i < n; ++i)
                for (int64_t at = 0; at < plane; ++at) {
                    const std::vector<double> p =
                        class_probabilities(model(), y + i * K * plane + at, K, plane);
                    const int64_t pixel = (start + i) * plane + at;
                    if (classes_only)
                        top_out[pixel] =
                            static_cast<uint8_t>(std::max_element(p.begin(), p.end()) - p.begin());
                    else
                        std::copy(p.begin(), p.end(), out + pixel * K);
                }
            if (start + n < images.count) {  // Ctrl-C between batches
                py::gil_scoped_acquire gil;
                if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            }
        }
        return result;
    }

    // lenz quantize: calibrates on `count` images of x (an array, or a data set's training images
    // drawn with `seed`), rounds the weights to int8; predict and evaluate then run in int8.
    void quantize(const py::object& x, int64_t count, uint64_t seed) {
        if (count < 1) throw Error("quantize: images must be at least 1, got " + std::to_string(count));
        const Shape in = model().input_shape();
        const int64_t E = in.elements();
        std::vector<float> calibration;
        if (py::isinstance<py::str>(x)) {
            DataSplit data;
            {
                py::gil_scoped_release release;
                data = load_dataset_for(model(), x.cast<std::string>(), 0.0, seed);
            }
            check_data_fits(model(), data.train, "training");
            calibration = calibration_images(data.train, info().normalization, count, seed);
            count = static_cast<int64_t>(calibration.size()) / E;
        } else {
            const ImageArray images = image_array(x, in, "quantize");
            count = std::min(count, images.count);
            calibration.resize(static_cast<size_t>(count * E));
            std::vector<uint8_t> scratch(static_cast<size_t>(E));
            for (int64_t i = 0; i < count; ++i)
                load_image(images, i, in, info().normalization, scratch.data(), calibration.data() + i * E);
        }
        if (count == 0) throw Error("quantize: no images to calibrate on");
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        inference_.reset();  // the next one runs in int8
        std::vector<ValueRange> ranges = calibrate(model(), calibration.data(), count);
        round_weights_to_int8(model());
        model().set_value_ranges(std::move(ranges));
    }
    bool quantized() { return model().calibrated(); }

    // x: images with labels y, or a data set as lenz train --data takes it (y None).
    // report: write out_dir/report.html after each epoch, as lenz train does (with a test set only).
    py::list fit(const py::object& x, const py::object& y, const py::object& validation, const py::dict& o,
                 const py::object& class_names, const py::object& progress, const std::string& out_dir,
                 bool verbose, bool report) {
        const TrainOptionValues values = fit_options(o);
        TrainConfig c = train_config(values);
        c.out_dir = out_dir;
        // The run's options, by the command line's names, as lenz train records them.
        nlohmann::json recorded = nlohmann::json::parse(options_json(values));
        DataSplit data;
        const Shape in = model().input_shape();
        if (py::isinstance<py::str>(x)) {
            if (!y.is_none() || !validation.is_none() || !class_names.is_none())
                throw Error(
                    "fit: a data set by name brings its own labels, class names and test set; leave out y, "
                    "validation and class_names");
            const std::string spec = x.cast<std::string>();
            const double val_split = std::get<double>(option_value(values, "--val-split"));
            py::gil_scoped_release release;
            data = load_dataset_for(model(), spec, val_split, c.seed);
            recorded["--data"] = spec;
        } else {
            if (y.is_none()) throw Error("fit: images need their labels: fit(x, y)");
            data.train = image_set(x, y, in, "fit");
            data.train.class_names = info().class_names;
            if (!class_names.is_none()) {
                if (py::isinstance<py::str>(class_names) || !py::isinstance<py::sequence>(class_names))
                    throw Error("fit: class_names: expected a list of strings, got " +
                                type_name(class_names));
                std::vector<std::string> given;
                for (const py::handle& name : class_names.cast<py::sequence>()) {
                    if (!py::isinstance<py::str>(name))
                        throw Error("fit: class_names: expected strings, got " + std::string(py::repr(name)));
                    given.push_back(name.cast<std::string>());
                }
                const int64_t classes = classes_of(model(), "fit");
                if (static_cast<int64_t>(given.size()) != classes)
                    throw Error("fit: class_names: " + std::to_string(given.size()) +
                                " names for the model's " + std::to_string(classes) + " classes");
                data.train.class_names = std::move(given);
            }
            data.description = "NumPy arrays";
            if (!validation.is_none()) {
                const bool pair =
                    (py::isinstance<py::tuple>(validation) || py::isinstance<py::list>(validation)) &&
                    py::len(validation) == 2;
                if (!pair)
                    throw Error("fit: expected validation=(images, labels), got " + type_name(validation));
                const py::sequence v = validation.cast<py::sequence>();
                data.test = image_set(v[0], v[1], in, "fit: validation");
                data.test.class_names = data.train.class_names;
            }
        }
        c.options_json = recorded.dump();

        std::vector<EpochMetrics> history;
        std::function<bool(const EpochMetrics&, const EvalResult&)> report_writer;
        if (report && data.test.size() > 0)
            report_writer = epoch_report_writer(model(), data, c, report_name());
        c.on_epoch = [&history, &report_writer, verbose, epochs = c.epochs](const EpochMetrics& m,
                                                                            const EvalResult& evaluation) {
            history.push_back(m);
            if (report_writer) report_writer(m, evaluation);
            if (verbose) {
                py::gil_scoped_acquire gil;
                if (!PyErr_Occurred()) py::print(epoch_line(m, epochs), py::arg("flush") = true);
            }
            return true;
        };
        // Each step: the caller's callback (False stops), then Ctrl-C: Python's handler has only set a
        // flag, which PyErr_CheckSignals turns into KeyboardInterrupt here, under the GIL. A Python
        // error stays pending, and training stops as on_step stops it.
        c.on_step = [&progress](const StepProgress& p) {
            py::gil_scoped_acquire gil;
            try {
                if (!progress.is_none()) {
                    const py::object answer = progress(step_dict(p));
                    if (!answer.is_none() && !PyObject_IsTrue(answer.ptr())) return false;
                }
            } catch (py::error_already_set& e) {
                e.restore();
                return false;
            }
            return PyErr_CheckSignals() == 0;
        };
        {
            py::gil_scoped_release release;
            std::lock_guard lock(mutex_);
            inference_.reset();  // it holds the weights as they were
            try {
                train(model(), data, c);
            } catch (const Interrupted&) {
                // stopped by the callback or Ctrl-C, after a checkpoint; the weights are the last step's
            }
            // What the run recorded: class names, the training set's normalisation, epochs, settings.
            const std::string checkpoint = (std::filesystem::path(c.out_dir) / "model.safetensors").string();
            if (std::filesystem::exists(checkpoint)) loaded_->info = load_model(checkpoint).info;
            history_.insert(history_.end(), history.begin(), history.end());
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        py::list result;
        for (const EpochMetrics& m : history) result.append(epoch_dict(m));
        return result;
    }

    py::dict evaluate(const py::object& x, const py::object& y, int64_t batch) {
        if (batch < 1) throw Error("evaluate: batch must be at least 1, got " + std::to_string(batch));
        std::string description;
        const ImageSet set = test_set(x, y, "evaluate", description);
        EvalResult r;
        {
            py::gil_scoped_release release;
            std::lock_guard lock(mutex_);
            r = lenz::evaluate(model(), set, info().normalization, batch, precision());
        }
        const std::vector<std::string>& names =
            set.class_names.empty() ? info().class_names : set.class_names;
        py::list per_class;
        for (size_t k = 0; k < r.per_class_accuracy.size(); ++k) {
            py::dict d;
            d["class"] = k < names.size() ? names[k] : "class " + std::to_string(k);
            d["accuracy"] = r.per_class_accuracy[k];
            per_class.append(d);
        }
        py::dict d;
        d["data"] = description;
        d["images"] = r.count;
        d["accuracy"] = r.accuracy;
        d["loss"] = r.loss;
        d["per_class"] = per_class;
        d["confusion"] = r.confusion;
        if (r.segmentation) {  // NaN IoU (a class in neither truth nor prediction) is None, as in JSON
            const auto number = [](double v) {
                return std::isnan(v) ? py::object(py::none()) : py::object(py::float_(v));
            };
            py::list iou;
            for (size_t k = 0; k < r.per_class_iou.size(); ++k) {
                iou.append(number(r.per_class_iou[k]));
                per_class[k]["iou"] = number(r.per_class_iou[k]);
            }
            d["pixels"] = r.pixels;
            d["pixel_accuracy"] = r.accuracy;
            d["mean_iou"] = number(r.mean_iou);
            d["per_class_iou"] = iou;
        }
        return d;
    }

    // The evaluation report lenz eval --report writes, with the curves of the fits so far.
    void report(const std::string& path, const py::object& x, const py::object& y) {
        std::string description;
        const ImageSet set = test_set(x, y, "report", description);
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        ReportData d;
        d.model_name = report_name();
        d.data_name = description;
        d.status = "evaluation";
        d.class_names = set.class_names.empty() ? info().class_names : set.class_names;
        d.summary = summarize(model(), {});
        d.history = history_;
        add_evaluation(d, model(), set, info().normalization);
        write_report(path, d);
    }

    void save(const std::string& path) {
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        write_checkpoint(path, model(), info());
    }

    void export_onnx(const std::string& path) {
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        write_onnx(path, model(), info());
    }

    // The pictures lenz visualize writes, by name; also as PNG files in out_dir unless it is empty.
    std::vector<std::pair<std::string, py::array_t<uint8_t>>> visualize(const py::object& image,
                                                                        const std::string& out_dir) {
        Image source;
        if (py::isinstance<py::str>(image)) {
            source = read_image(image.cast<std::string>());
        } else {
            if (!py::isinstance<py::array_t<uint8_t>>(image))
                throw Error("visualize: expected an image file's path or a uint8 array (H, W) or (H, W, C)");
            const auto a = py::reinterpret_borrow<py::array>(image);
            if ((a.ndim() != 2 && a.ndim() != 3) || (a.ndim() == 3 && a.shape(2) != 1 && a.shape(2) != 3) ||
                !(a.flags() & py::array::c_style))
                throw Error(
                    "visualize: expected a C-contiguous uint8 image (H, W), (H, W, 1) or (H, W, 3), got " +
                    shape_text(shape_of(a)));
            source.height = a.shape(0);
            source.width = a.shape(1);
            source.channels = a.ndim() == 3 ? a.shape(2) : 1;
            const auto* p = static_cast<const uint8_t*>(a.data());
            source.pixels.assign(p, p + a.size());
        }
        Visualization v;
        {
            py::gil_scoped_release release;
            std::lock_guard lock(mutex_);
            v = lenz::visualize(model(), source, info().normalization, info().class_names);
            if (!out_dir.empty()) {
                std::error_code ec;
                std::filesystem::create_directories(out_dir, ec);
                if (ec) throw IoError(out_dir + ": cannot create the output folder: " + ec.message());
                for (const NamedPicture& p : v.pictures)
                    write_png((std::filesystem::path(out_dir) / (p.name + ".png")).string(), p.image);
            }
        }
        std::vector<std::pair<std::string, py::array_t<uint8_t>>> result;
        for (const NamedPicture& p : v.pictures) result.emplace_back(p.name, image_to_array(p.image));
        return result;
    }

  private:
    // A quantised model runs in int8, as on the command line.
    Precision precision() { return model().calibrated() ? Precision::int8 : Precision::f32; }

    // Images x with labels y, or the test set of a data set named by x, and what to call it.
    ImageSet test_set(const py::object& x, const py::object& y, const std::string& what,
                      std::string& description) {
        if (!py::isinstance<py::str>(x)) {
            if (y.is_none()) throw Error(what + ": images need their labels: " + what + "(x, y)");
            description = "NumPy arrays";
            return image_set(x, y, model().input_shape(), what);
        }
        if (!y.is_none()) throw Error(what + ": a data set by name brings its own labels; leave out y");
        py::gil_scoped_release release;
        DataSplit data = load_dataset_for(model(), x.cast<std::string>(), 0.0, 1);
        description = data.description;
        return std::move(data.test);
    }

    // What reports call the model: its file's name without the extension.
    std::string report_name() const { return std::filesystem::path(name_).stem().string(); }

    Inference& inference(int64_t batch) {
        if (!inference_ || inference_batch_ < batch) {
            inference_.reset();
            inference_ = std::make_unique<Inference>(model(), batch, precision());
            inference_batch_ = batch;
        }
        return *inference_;
    }

    std::unique_ptr<LoadedModel> loaded_;  // not moved: the runner holds a reference to the model
    std::string name_;
    std::mutex mutex_;
    std::unique_ptr<Inference> inference_;
    int64_t inference_batch_ = 0;
    std::vector<EpochMetrics> history_;  // of every fit, for report()
};

py::dict load_data(const std::string& spec, double val_split, uint64_t seed, int64_t height, int64_t width,
                   int64_t channels, bool skip_bad_images) {
    DataSplit data;
    {
        py::gil_scoped_release release;
        data = load_dataset(spec, {.val_split = val_split,
                                   .seed = seed,
                                   .height = height,
                                   .width = width,
                                   .channels = channels,
                                   .skip_bad_images = skip_bad_images});
    }
    py::dict d;
    d["x_train"] = set_to_array(data.train);
    d["y_train"] = targets_to_array(data.train);
    d["x_test"] = set_to_array(data.test);
    d["y_test"] = targets_to_array(data.test);
    d["class_names"] = data.train.class_names;
    d["description"] = data.description;
    d["bad_images"] = data.bad_images;
    return d;
}

}  // namespace
}  // namespace lenz::python

PYBIND11_MODULE(_core, m) {
    using lenz::python::PyModel;
    m.doc() = "Lenz's engine, for lenz/__init__.py";
    // lenz.Error: the library's one-line messages, as the command line prints them after "lenz: error:".
    py::register_exception<lenz::Error>(m, "Error", PyExc_ValueError);

    py::class_<PyModel>(m, "Model")
        .def_static(
            "load",
            [](const std::string& path, uint64_t seed) {
                return std::make_unique<PyModel>(lenz::load_with_weights(path, seed), path);
            },
            py::arg("path"), py::arg("seed") = 1)
        .def_static(
            "load_trained",
            [](const std::string& path) {
                return std::make_unique<PyModel>(lenz::load_trained_model(path), path);
            },
            py::arg("path"))
        .def_static(
            "from_text",
            [](const std::string& text, uint64_t seed) {
                lenz::LoadedModel loaded{lenz::parse_model(text, "<text>"), {}, {}};
                loaded.model.init_params(seed);
                return std::make_unique<PyModel>(std::move(loaded), "model");
            },
            py::arg("text"), py::arg("seed") = 1)
        .def_property_readonly("name", &PyModel::name)
        .def_property_readonly("input_shape", &PyModel::input_shape)
        .def_property_readonly("outputs", &PyModel::outputs)
        .def_property_readonly("text", [](PyModel& p) { return p.model().to_text(); })
        .def_property(
            "class_names", [](PyModel& p) { return p.info().class_names; },
            [](PyModel& p, std::vector<std::string> names) { p.info().class_names = std::move(names); })
        .def_property_readonly("normalization",
                               [](PyModel& p) {
                                   return py::make_tuple(p.info().normalization.mean,
                                                         p.info().normalization.stddev);
                               })
        .def("summary", &PyModel::summary, py::arg("batch"), py::arg("optimizer"), py::arg("dtype"))
        .def("predict", &PyModel::predict, py::arg("x"), py::arg("batch"), py::arg("classes_only"))
        .def("fit", &PyModel::fit, py::arg("x"), py::arg("y"), py::arg("validation"), py::arg("options"),
             py::arg("class_names"), py::arg("progress"), py::arg("out"), py::arg("verbose"),
             py::arg("report"))
        .def("report", &PyModel::report, py::arg("path"), py::arg("x"), py::arg("y"))
        .def("evaluate", &PyModel::evaluate, py::arg("x"), py::arg("y"), py::arg("batch"))
        .def("quantize", &PyModel::quantize, py::arg("x"), py::arg("images"), py::arg("seed"))
        .def_property_readonly("quantized", &PyModel::quantized)
        .def("save", &PyModel::save, py::arg("path"))
        .def("export_onnx", &PyModel::export_onnx, py::arg("path"))
        .def("visualize", &PyModel::visualize, py::arg("image"), py::arg("out"));

    m.def("load_data", &lenz::python::load_data, py::arg("spec"), py::arg("val_split"), py::arg("seed"),
          py::arg("height"), py::arg("width"), py::arg("channels"), py::arg("skip_bad_images") = false);
    // The options of a training run (lenz/train_options.h), for fit's keywords, defaults and help.
    m.def("train_options", [] {
        py::list options;
        for (const lenz::TrainOption& option : lenz::train_options()) {
            py::dict d;
            d["keyword"] = option.keyword();
            d["name"] = option.name;
            d["default"] = std::visit(
                [](const auto& v) -> py::object {
                    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>)
                        return py::none();
                    else
                        return py::cast(v);
                },
                option.default_value);
            d["help"] = option.help;
            d["choices"] = option.choices;
            options.append(d);
        }
        return options;
    });
    m.def("threads", &lenz::threads);
    m.def("set_threads", &lenz::set_threads, py::arg("n"));
    m.def(
        "set_winograd", [](const std::string& use) { lenz::set_winograd(lenz::parse_winograd(use)); },
        py::arg("use"));
}
