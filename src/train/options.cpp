#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>

#include "lenz/error.h"
#include "lenz/train_options.h"

namespace lenz {

std::string TrainOption::keyword() const {
    std::string k = std::string(name).substr(2);
    for (char& c : k)
        if (c == '-') c = '_';
    return k;
}

namespace {

constexpr double kUnbounded = std::numeric_limits<double>::infinity();

TrainOption whole(const char* name, int64_t fallback, double min, double max, const char* help) {
    return {name, TrainOption::Type::integer, fallback, min, max, false, {}, help};
}
TrainOption real(const char* name, double fallback, double min, double max, const char* help) {
    return {name, TrainOption::Type::real, fallback, min, max, false, {}, help};
}
TrainOption text(const char* name, const char* fallback, std::vector<std::string> choices, const char* help) {
    return {name, TrainOption::Type::text, std::string(fallback), 0, 0, false, std::move(choices), help};
}
// A number above zero whose default is derived from other options (train_config says how).
TrainOption derived_above_zero(const char* name, const char* help) {
    return {name, TrainOption::Type::real, std::monostate{}, 0, kUnbounded, true, {}, help};
}
TrainOption flag(const char* name, const char* help) {
    return {name, TrainOption::Type::flag, false, 0, 0, false, {}, help};
}

}  // namespace

const std::vector<TrainOption>& train_options() {
    static const std::vector<TrainOption> options{
        whole("--epochs", 5, 1, 100000, "passes over the training set (default 5)"),
        whole("--batch", 64, 1, 1 << 20, "images per step (default 64)"),
        derived_above_zero("--lr", "peak learning rate (default 0.002 for adam/adamw, 0.05 for sgd)"),
        text("--optimizer", "adam", {"sgd", "momentum", "nesterov", "adam", "adamw"},
             "adam (default), adamw, sgd, momentum or nesterov"),
        real("--momentum", 0.9, 0, 1, "momentum for momentum/nesterov (default 0.9)"),
        real("--weight-decay", 0.0, 0, 1, "L2 (sgd, adam) or decoupled (adamw) weight decay (default 0)"),
        text("--schedule", "cosine", {"cosine", "step", "constant", "poly"},
             "cosine (default), step, constant or poly ((1 - t)^0.9, as segmentation papers use)"),
        real("--warmup", 0.5, 0, 1000, "epochs of linear warm-up (default 0.5)"),
        whole("--step-every", 10, 1, 100000, "step schedule: epochs between decays (default 10)"),
        real("--gamma", 0.1, 0, 1, "step schedule: factor per decay (default 0.1)"),
        whole("--seed", 1, 0, kUnbounded,
              "seed for weights, shuffling, dropout and augmentation (default 1)"),
        whole("--augment-crop", 0, 0, 64, "random crops after padding this many pixels (off by default)"),
        flag("--augment-flip", "random horizontal flips (off by default)"),
        real("--augment-scale", 1.0, 1, 4,
             "random scale: each image resized by a factor between 1/S and S (log-uniform), then cropped or "
             "padded back to its size at a random place, masks alike (off by default; 2 is usual for "
             "segmentation)"),
        real(
            "--augment-erase", 0.0, 0, 1,
            "random erasing: the probability that a rectangle of 2-40 % of the image is set to the mean (off "
            "by default; 0.5 is usual)"),
        real("--label-smoothing", 0.0, 0, 0.5,
             "train towards (1 - E) on the label and E spread over all classes (off by default; 0.1 is "
             "usual); the test loss stays the plain cross-entropy"),
        text("--loss", "ce", {"ce", "dice", "ce+dice"},
             "ce (cross-entropy, the default), or for segmentation dice or ce+dice (soft Dice, alone or "
             "added)"),
        text("--class-weights", "", {},
             "the cross-entropy's weight of each class, comma-separated (0.5,1,2; default: all 1), as "
             "PyTorch's weight="),
        real("--val-split", 0.0, 0, 0.9, "image folders without test/: fraction held out for testing"),
        whole("--limit-train", 0, 0, 1 << 30,
              "use only N training images: a seeded random sample that keeps every class in proportion, at "
              "least one of each"),
        whole("--limit-test", 0, 0, 1 << 30, "use only N test images, sampled as --limit-train's"),
        text("--dtype", "float32", {"float32", "bf16", "bfloat16"},
             "float32 (default) or bf16: convolutions and dense layers multiply in bf16 and add up in "
             "float32; needs AVX512-BF16 or AMX"),
    };
    return options;
}

const TrainOption& train_option(const std::string& name) {
    for (const TrainOption& option : train_options())
        if (name == option.name) return option;
    throw Error("internal: no training option " + name);
}

namespace {

// "0.5,1,2": each a finite number of at least 0, and not all 0.
std::vector<float> parse_class_weights(const std::string& text) {
    std::vector<float> weights;
    if (text.empty()) return weights;
    size_t start = 0;
    bool any = false;
    while (start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, comma - start);
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (item.empty() || end != item.c_str() + item.size() || !std::isfinite(v) || v < 0)
            throw Error("--class-weights: '" + item + "' is not a weight (a number of at least 0)");
        weights.push_back(static_cast<float>(v));
        any = any || v > 0;
        start = comma + 1;
    }
    if (!any) throw Error("--class-weights: every weight is 0");
    return weights;
}

std::string number_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
}

}  // namespace

std::string expected_value(const TrainOption& option) {
    switch (option.type) {
        case TrainOption::Type::flag:
            return "true or false";
        case TrainOption::Type::text:
            return "a string";
        case TrainOption::Type::integer:
            return "a whole number";
        case TrainOption::Type::real:
            break;
    }
    return "a number";
}

std::string option_problem(const TrainOption& option, const OptionValue& value) {
    using Type = TrainOption::Type;
    if (std::holds_alternative<std::monostate>(value))
        return std::holds_alternative<std::monostate>(option.default_value) ? "" : "needs a value";
    double number = 0;
    switch (option.type) {
        case Type::flag:
            if (!std::holds_alternative<bool>(value)) return "expected " + expected_value(option);
            return "";
        case Type::text: {
            const std::string* text = std::get_if<std::string>(&value);
            if (!text) return "expected " + expected_value(option);
            if (option.choices.empty()) return "";
            std::string list;
            for (const std::string& c : option.choices) {
                if (c == *text) return "";
                list += (list.empty() ? "" : ", ") + c;
            }
            return "'" + *text + "' is not one of " + list;
        }
        case Type::integer:
            if (!std::holds_alternative<int64_t>(value)) return "expected " + expected_value(option);
            number = static_cast<double>(std::get<int64_t>(value));
            break;
        case Type::real:
            if (const int64_t* i = std::get_if<int64_t>(&value))
                number = static_cast<double>(*i);
            else if (const double* d = std::get_if<double>(&value))
                number = *d;
            else
                return "expected " + expected_value(option);
            break;
    }
    const std::string got = ", got " + number_text(number);
    if (std::isnan(number)) return "expected a number, got NaN";
    if (option.min_exclusive && !(number > option.min))
        return "must be greater than " + number_text(option.min) + got;
    if (option.max == kUnbounded && number < option.min)
        return "must be at least " + number_text(option.min) + got;
    if (number < option.min || number > option.max)
        return "must be between " + number_text(option.min) + " and " + number_text(option.max) + got;
    return "";
}

const OptionValue& option_value(const TrainOptionValues& values, const std::string& name) {
    const auto it = values.find(name);
    return it != values.end() ? it->second : train_option(name).default_value;
}

std::string options_json(const TrainOptionValues& values) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const TrainOption& option : train_options())
        std::visit(
            [&](const auto& v) {
                if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>)
                    j[option.name] = nullptr;
                else
                    j[option.name] = v;
            },
            option_value(values, option.name));
    return j.dump();
}

TrainOptionValues options_from_json(const std::string& object_text) {
    using Type = TrainOption::Type;
    nlohmann::json stored;
    try {
        stored = nlohmann::json::parse(object_text);
    } catch (const nlohmann::json::exception&) {
        throw FormatError("the run's options in the metadata are not JSON");
    }
    if (!stored.is_object()) throw FormatError("the run's options in the metadata are not a JSON object");
    TrainOptionValues values;
    for (const TrainOption& option : train_options()) {
        const auto it = stored.find(option.name);
        if (it == stored.end()) continue;  // a checkpoint from before the option existed: its default
        const nlohmann::json& v = *it;
        OptionValue value;
        if (v.is_null()) {
            value = std::monostate{};
        } else if (option.type == Type::flag && v.is_boolean()) {
            value = v.get<bool>();
        } else if (option.type == Type::text && v.is_string()) {
            value = v.get<std::string>();
        } else if (option.type == Type::integer && v.is_number_integer() &&
                   (v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t{INT64_MAX} : true)) {
            value = v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
        } else if (option.type == Type::real && v.is_number()) {
            value = v.get<double>();
            // Before the table, a derived value left out (the learning rate) was recorded as -1.
            const bool derived = std::holds_alternative<std::monostate>(option.default_value);
            if (derived && option.min_exclusive && !(v.get<double>() > option.min)) value = std::monostate{};
        } else {
            throw FormatError(std::string("the run's ") + option.name +
                              " in the metadata has the wrong type");
        }
        if (const std::string problem = option_problem(option, value); !problem.empty())
            throw FormatError(std::string("the run's ") + option.name + " in the metadata: " + problem);
        values[option.name] = value;
    }
    return values;
}

TrainConfig train_config(const TrainOptionValues& values) {
    for (const auto& [name, value] : values)
        if (const std::string problem = option_problem(train_option(name), value); !problem.empty())
            throw Error(name + ": " + problem);
    const auto integer = [&](const char* name) { return std::get<int64_t>(option_value(values, name)); };
    const auto real = [&](const char* name) {
        const OptionValue& v = option_value(values, name);
        return std::holds_alternative<int64_t>(v) ? static_cast<double>(std::get<int64_t>(v))
                                                  : std::get<double>(v);
    };
    const auto text = [&](const char* name) { return std::get<std::string>(option_value(values, name)); };
    TrainConfig c;
    c.epochs = integer("--epochs");
    c.batch = integer("--batch");
    c.seed = static_cast<uint64_t>(integer("--seed"));
    c.limit_train = integer("--limit-train");
    c.limit_test = integer("--limit-test");
    c.precision = parse_precision(text("--dtype"));
    require_precision(c.precision);
    c.optimizer = parse_optimizer(text("--optimizer"));
    c.optimizer.momentum = real("--momentum");
    c.optimizer.weight_decay = real("--weight-decay");
    c.schedule.kind = parse_schedule(text("--schedule"));
    const OptionValue& lr = option_value(values, "--lr");
    c.schedule.base_lr =
        std::holds_alternative<std::monostate>(lr) ? default_learning_rate(c.optimizer.kind) : real("--lr");
    c.schedule.warmup_epochs = real("--warmup");
    c.schedule.step_every = integer("--step-every");
    c.schedule.step_gamma = real("--gamma");
    c.augment.crop_padding = integer("--augment-crop");
    c.augment.horizontal_flip = std::get<bool>(option_value(values, "--augment-flip"));
    c.augment.erase_probability = real("--augment-erase");
    c.augment.max_scale = real("--augment-scale");
    c.loss.kind = parse_loss(text("--loss"));
    c.loss.label_smoothing = static_cast<float>(real("--label-smoothing"));
    c.loss.class_weights = parse_class_weights(text("--class-weights"));
    return c;
}

}  // namespace lenz
