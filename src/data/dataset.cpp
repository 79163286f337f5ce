// Finding and loading a data set by name or folder: the Debian Fashion-MNIST package, MNIST, a folder
// of IDX files, or a folder of images (PNG, JPEG, BMP, TIFF, WebP) with one sub-folder per class.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/files.h"
#include "data/segmentation.h"
#include "lenz/data.h"
#include "lenz/error.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;

const char* const kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
const char* const kMnistDir = "/usr/share/datasets/mnist";
const char* const kIdxNames[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::string lower(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

// The entries of a folder, sorted by name so that every platform loads them in the same order.
std::vector<fs::path> sorted_entries(const fs::path& dir) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) throw IoError(dir.string() + ": cannot list folder: " + ec.message());
    std::vector<fs::path> entries;
    for (; it != fs::directory_iterator(); it.increment(ec)) entries.push_back(it->path());
    if (ec) throw IoError(dir.string() + ": cannot list folder: " + ec.message());
    std::sort(entries.begin(), entries.end());
    return entries;
}

// The file NAME or NAME.gz in dir, or an empty path. The plain file wins: it loads faster.
fs::path find_idx_file(const fs::path& dir, const std::string& name) {
    for (const std::string& candidate : {name, name + ".gz"}) {
        if (is_regular(dir / candidate)) return dir / candidate;
    }
    return {};
}

enum class IdxNames { fashion, digits, generic };

// Names for the labels: Fashion-MNIST's or MNIST's ten, else digits for a 10-class set and
// "class N" otherwise (one per label up to the largest present).
std::vector<std::string> idx_class_names(const std::string& dir, const DataSplit& split, IdxNames kind) {
    int32_t max_label = 0;
    for (const ImageSet* set : {&split.train, &split.test}) {
        for (int32_t label : set->labels) max_label = std::max(max_label, label);
    }
    if (kind != IdxNames::generic && max_label > 9) {
        throw FormatError(dir + ": label " + std::to_string(max_label) + " found, but " +
                          (kind == IdxNames::fashion ? "Fashion-MNIST" : "MNIST") + " has 10 classes (0..9)");
    }
    if (kind == IdxNames::fashion) return kFashionNames;
    const int32_t count = kind == IdxNames::digits ? 10 : max_label + 1;
    std::vector<std::string> names;
    for (int32_t i = 0; i < count; ++i) {
        names.push_back(count == 10 ? std::to_string(i) : "class " + std::to_string(i));
    }
    return names;
}

// Loads the four IDX files of dir, or returns false when it holds none of them.
bool load_idx_folder(const fs::path& dir, DataSplit& split) {
    fs::path files[4];
    std::string missing;
    int found = 0;
    for (int i = 0; i < 4; ++i) {
        files[i] = find_idx_file(dir, kIdxNames[i]);
        if (files[i].empty()) {
            missing += std::string(missing.empty() ? "" : ", ") + kIdxNames[i] + "[.gz]";
        } else {
            ++found;
        }
    }
    if (found == 0) return false;
    if (found < 4) throw IoError(dir.string() + ": incomplete IDX data set, missing " + missing);
    split.train = read_idx(files[0].string(), files[1].string());
    split.test = read_idx(files[2].string(), files[3].string());
    if (split.train.height != split.test.height || split.train.width != split.test.width) {
        throw FormatError(files[2].string() + ": test images are " + std::to_string(split.test.height) + "x" +
                          std::to_string(split.test.width) + " but training images are " +
                          std::to_string(split.train.height) + "x" + std::to_string(split.train.width));
    }
    return true;
}

void set_class_names(DataSplit& split, std::vector<std::string> names) {
    split.train.class_names = names;
    split.test.class_names = std::move(names);
}

// A tiny, fully specified generator (splitmix64), so that a seed gives the same split everywhere.
class SplitMix64 {
  public:
    explicit SplitMix64(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n), by multiply-shift rather than modulo, which would favour small values.
    uint64_t below(uint64_t n) {
        return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
    }

  private:
    uint64_t state_;
};

// FNV-1a: seeds each class's shuffle from its name, so a class's split does not change when other
// classes are added or removed.
uint64_t hash_name(const std::string& name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char ch : name) h = (h ^ ch) * 0x100000001b3ull;
    return h;
}

bool is_hidden(const fs::path& path) {
    const std::string name = path.filename().string();
    return name.empty() || name[0] == '.';
}

struct ClassFolder {
    std::string name;
    std::vector<fs::path> images;  // sorted
};

// Files of class folders that are not images, counted by (lower-case) extension.
using OtherFiles = std::map<std::string, int64_t>;

// "40 .txt, 20 .gif": most common first, then by name.
std::string other_files_text(const OtherFiles& others) {
    std::vector<std::pair<std::string, int64_t>> sorted(others.begin(), others.end());
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string text;
    for (const auto& [ext, count] : sorted)
        text += (text.empty() ? "" : ", ") + std::to_string(count) + " " + ext;
    return text;
}

int64_t total(const OtherFiles& others) {
    int64_t n = 0;
    for (const auto& entry : others) n += entry.second;
    return n;
}

// The class sub-folders of root (hidden ones skipped) and their image files, sorted by name. Hidden
// files are skipped too (macOS archives carry "._name.png" metadata files that are not images);
// other files that are not images are counted in `others`.
std::vector<ClassFolder> list_classes(const fs::path& root, OtherFiles* others = nullptr) {
    std::vector<ClassFolder> classes;
    for (const fs::path& entry : sorted_entries(root)) {
        if (!is_folder(entry) || is_hidden(entry)) continue;
        ClassFolder folder{entry.filename().string(), {}};
        OtherFiles here;
        for (const fs::path& file : sorted_entries(entry)) {
            if (is_hidden(file) || !is_regular(file)) continue;
            const std::string ext = lower(file.extension().string());
            if (is_image_extension(ext)) {
                folder.images.push_back(file);
            } else {
                ++here[ext.empty() ? "without extension" : ext];
            }
        }
        if (folder.images.empty()) {
            throw FormatError(entry.string() +
                              ": class folder holds no .png, .jpg, .jpeg, .bmp, .tif, .tiff or .webp images" +
                              (here.empty() ? std::string() : " (only " + other_files_text(here) + ")"));
        }
        if (others)
            for (const auto& [ext, count] : here) (*others)[ext] += count;
        classes.push_back(std::move(folder));
    }
    if (classes.empty()) {
        throw FormatError(root.string() + ": no class folders found (expected " + root.string() +
                          "/CLASS/*.png|jpg|bmp|tif|webp, one folder per class)");
    }
    return classes;
}

std::vector<std::string> class_names(const std::vector<ClassFolder>& classes) {
    std::vector<std::string> names;
    for (const ClassFolder& c : classes) names.push_back(c.name);
    return names;
}

ImageSet empty_set(const DataOptions& options, std::vector<std::string> names) {
    ImageSet set;
    set.height = options.height;
    set.width = options.width;
    set.channels = options.channels;
    set.class_names = std::move(names);
    return set;
}

// The image files that could not be read, with skip_bad_images; without it, the first one's error
// stops the load.
struct BadImages {
    bool skip = false;
    std::map<std::string, std::string> by_path;  // found while reading headers: not read again
    std::vector<std::string> messages;           // in the order found

    // Runs read(), which reads `path`; returns false where it failed and the file is skipped.
    template <typename F>
    bool attempt(const fs::path& path, F&& read) {
        if (by_path.count(path.string())) return false;
        try {
            read();
            return true;
        } catch (const FormatError& e) {
            if (!skip) throw;
            record(path, e.what());
        } catch (const IoError& e) {
            if (!skip) throw;
            record(path, e.what());
        }
        return false;
    }
    void record(const fs::path& path, const std::string& message) {
        by_path.emplace(path.string(), message);
        messages.push_back(message);
    }
};

// Decodes, fits and appends one image, converting (H, W, C) to planar (C, H, W).
void append_image(ImageSet& set, const fs::path& path, int32_t label, BadImages& bad) {
    Image decoded;
    if (!bad.attempt(path, [&] { decoded = read_image(path.string()); })) return;
    const Image image = fit_image(decoded, set.height, set.width, set.channels);
    const int64_t plane = set.height * set.width;
    const size_t base = set.pixels.size();
    set.pixels.resize(base + plane * set.channels);
    for (int64_t c = 0; c < set.channels; ++c) {
        for (int64_t i = 0; i < plane; ++i) {
            set.pixels[base + c * plane + i] = image.pixels[i * set.channels + c];
        }
    }
    set.labels.push_back(label);
}

void check_image_options(const std::string& dir, const DataOptions& options) {
    if (options.height <= 0 || options.width <= 0 || (options.channels != 1 && options.channels != 3)) {
        throw ShapeError(dir + ": image folders need the model's input size, got " +
                         std::to_string(options.height) + "x" + std::to_string(options.width) + "x" +
                         std::to_string(options.channels) + " (expected H, W > 0 and 1 or 3 channels)");
    }
}

// Explains which classes appear on only one side.
std::string class_difference(const std::vector<std::string>& train, const std::vector<std::string>& test) {
    std::string only_train, only_test;
    for (const std::string& name : train) {
        if (!std::binary_search(test.begin(), test.end(), name)) {
            only_train += (only_train.empty() ? "" : ", ") + name;
        }
    }
    for (const std::string& name : test) {
        if (!std::binary_search(train.begin(), train.end(), name)) {
            only_test += (only_test.empty() ? "" : ", ") + name;
        }
    }
    return "only in train/: " + (only_train.empty() ? "none" : only_train) +
           "; only in test/: " + (only_test.empty() ? "none" : only_test);
}

// What the description adds after the classes: how the size was chosen, "; skipped 60 files that
// are not images: 40 .txt, 20 .gif" and "; skipped 3 unreadable images", or nothing.
std::string notes_text(const std::string& shape_note, const OtherFiles& others, const BadImages& bad) {
    std::string text = shape_note.empty() ? "" : "; " + shape_note;
    if (!others.empty()) {
        const int64_t n = total(others);
        text += "; skipped " + std::to_string(n) +
                (n == 1 ? " file that is not an image: " : " files that are not images: ") +
                other_files_text(others);
    }
    if (!bad.messages.empty()) {
        const size_t n = bad.messages.size();
        text += "; skipped " + std::to_string(n) + (n == 1 ? " unreadable image" : " unreadable images");
    }
    return text;
}

DataSplit load_train_test(const fs::path& dir, const DataOptions& options, BadImages& bad,
                          const std::string& shape_note) {
    OtherFiles others;
    const std::vector<ClassFolder> train = list_classes(dir / "train", &others);
    const std::vector<ClassFolder> test = list_classes(dir / "test", &others);
    std::vector<std::string> names = class_names(train);
    if (names != class_names(test)) {
        throw FormatError(dir.string() + ": train/ and test/ hold different classes (" +
                          class_difference(names, class_names(test)) + ")");
    }
    DataSplit split{empty_set(options, names), empty_set(options, names), "", {}};
    for (size_t label = 0; label < train.size(); ++label) {
        const auto id = static_cast<int32_t>(label);
        for (const fs::path& file : train[label].images) append_image(split.train, file, id, bad);
        for (const fs::path& file : test[label].images) append_image(split.test, file, id, bad);
    }
    split.description = "images in " + dir.string() + " (train/ and test/, " + std::to_string(names.size()) +
                        " classes" + (options.val_split > 0 ? "; --val-split ignored as test/ exists" : "") +
                        notes_text(shape_note, others, bad) + ")";
    return split;
}

// Holds out round(val_split * count) images of each class (at least one, and never all of them).
DataSplit load_with_val_split(const fs::path& root, const DataOptions& options, BadImages& bad,
                              const std::string& shape_note) {
    OtherFiles others;
    const std::vector<ClassFolder> classes = list_classes(root, &others);
    std::vector<std::string> names = class_names(classes);
    DataSplit split{empty_set(options, names), empty_set(options, names), "", {}};
    for (size_t label = 0; label < classes.size(); ++label) {
        const std::vector<fs::path>& files = classes[label].images;
        const size_t count = files.size();
        if (count < 2) {
            throw FormatError((root / classes[label].name).string() + ": holds " + std::to_string(count) +
                              " image, too few to hold some out for --val-split (need at least 2)");
        }
        size_t held = static_cast<size_t>(std::llround(options.val_split * static_cast<double>(count)));
        held = std::clamp<size_t>(held, 1, count - 1);
        // Fisher-Yates on indices; the first `held` of the permutation form the test set.
        std::vector<size_t> order(count);
        for (size_t i = 0; i < count; ++i) order[i] = i;
        SplitMix64 rng(options.seed ^ hash_name(classes[label].name));
        for (size_t i = count - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
        std::vector<bool> in_test(count, false);
        for (size_t i = 0; i < held; ++i) in_test[order[i]] = true;
        // Keep file order within each side, so the sets are easy to inspect.
        for (size_t i = 0; i < count; ++i) {
            append_image(in_test[i] ? split.test : split.train, files[i], static_cast<int32_t>(label), bad);
        }
    }
    split.description = "images in " + root.string() + " (" + std::to_string(names.size()) + " classes, " +
                        std::to_string(std::lround(options.val_split * 100)) + "% of each held out, seed " +
                        std::to_string(options.seed) + notes_text(shape_note, others, bad) + ")";
    return split;
}

std::string shape_text(int64_t height, int64_t width, int64_t channels) {
    return std::to_string(height) + "x" + std::to_string(width) + "x" + std::to_string(channels);
}

// Without a model to fit them to (height and width 0, or channels 0), the images take the most
// common size and channel count of the training images, read from their headers only; ties go to
// the larger size (more pixels, then taller) and to 3 channels. `note` says which, for the
// description.
DataOptions with_common_size(const fs::path& train_root, DataOptions options, BadImages& bad,
                             std::string& note) {
    const bool need_size = options.height == 0 && options.width == 0;
    const bool need_channels = options.channels == 0;
    if (!need_size && !need_channels) return options;
    std::map<std::pair<int64_t, int64_t>, int64_t> sizes;
    int64_t grey = 0, colour = 0, read = 0, files = 0;
    for (const ClassFolder& folder : list_classes(train_root)) {
        for (const fs::path& file : folder.images) {
            ++files;
            ImageInfo info;
            if (!bad.attempt(file, [&] { info = read_image_info(file.string()); })) continue;
            ++sizes[{info.height, info.width}];
            ++(info.channels == 1 ? grey : colour);
            ++read;
        }
    }
    if (read == 0) {
        throw FormatError(train_root.string() + ": none of its " + std::to_string(files) +
                          " training images could be read (the first: " + bad.messages.front() + ")");
    }
    std::pair<int64_t, int64_t> best{0, 0};
    int64_t best_count = 0;
    for (const auto& [size, count] : sizes) {
        const auto key = std::tuple(count, size.first * size.second, size.first);
        if (key > std::tuple(best_count, best.first * best.second, best.first))
            best = size, best_count = count;
    }
    if (need_size) options.height = best.first, options.width = best.second;
    if (need_channels) options.channels = colour >= grey ? 3 : 1;
    const int64_t channel_count = options.channels == 3 ? colour : grey;
    const std::string of = " of " + std::to_string(read) + " training images";
    note = shape_text(options.height, options.width, options.channels);
    if (need_size && need_channels && best_count == read && channel_count == read) {
        note += ", the size of all " + std::to_string(read) + " training images";
    } else if (need_size && need_channels) {
        note += ", the most common size (" + std::to_string(best_count) + of + ") and channel count (" +
                std::to_string(channel_count) + of + ")";
    } else if (need_size) {
        note += ", the most common size (" + std::to_string(best_count) + of + ")";
    } else {
        note += ", the most common channel count (" + std::to_string(channel_count) + of + ")";
    }
    return options;
}

// Lists the bad images on stderr (at most 10 lines, then how many more) and keeps them in `split`.
void report_bad_images(DataSplit& split, BadImages& bad) {
    constexpr size_t kListed = 10;
    for (size_t i = 0; i < bad.messages.size() && i < kListed; ++i)
        std::fprintf(stderr, "lenz: warning: skipped a bad image: %s\n", bad.messages[i].c_str());
    if (bad.messages.size() > kListed)
        std::fprintf(stderr, "lenz: warning: and %zu more bad images\n", bad.messages.size() - kListed);
    split.bad_images = std::move(bad.messages);
}

DataSplit load_image_folder(const fs::path& dir, const DataOptions& requested) {
    const bool has_train = is_folder(dir / "train");
    const bool has_test = is_folder(dir / "test");
    if (has_test && !has_train) {
        throw FormatError(dir.string() +
                          ": has test/ but no train/ (expected DIR/train/CLASS/*.png and "
                          "DIR/test/CLASS/*.png)");
    }
    BadImages bad;
    bad.skip = requested.skip_bad_images;
    std::string shape_note;
    if ((requested.height == 0) != (requested.width == 0)) check_image_options(dir.string(), requested);
    const DataOptions options = with_common_size(has_train ? dir / "train" : dir, requested, bad, shape_note);
    check_image_options(dir.string(), options);
    if (has_test) {
        DataSplit split = load_train_test(dir, options, bad, shape_note);
        report_bad_images(split, bad);
        return split;
    }
    if (options.val_split < 0.0 || options.val_split >= 1.0 || std::isnan(options.val_split)) {
        throw Error(dir.string() + ": val_split " + std::to_string(options.val_split) +
                    " is out of range (expected 0 <= val_split < 1)");
    }
    const fs::path root = has_train ? dir / "train" : dir;
    if (options.val_split == 0.0) {
        throw Error(dir.string() +
                    ": no test/ folder to evaluate on; add DIR/test/CLASS/... or hold out part "
                    "of each class with --val-split (e.g. --val-split 0.2)");
    }
    DataSplit split = load_with_val_split(root, options, bad, shape_note);
    report_bad_images(split, bad);
    return split;
}

std::atomic<bool> skip_bad_images_by_default{false};

}  // namespace

void set_skip_bad_images_default(bool skip) {
    skip_bad_images_by_default = skip;
}
bool skip_bad_images_default() {
    return skip_bad_images_by_default;
}

DataSplit load_dataset(const std::string& spec, const DataOptions& options) {
    DataSplit split;
    if (spec == "fashion-mnist") {
        if (!is_folder(kFashionMnistDir)) {
            throw IoError(std::string("Fashion-MNIST not found: ") + kFashionMnistDir +
                          " does not exist; install it with: apt-get install dataset-fashion-mnist");
        }
        if (!load_idx_folder(kFashionMnistDir, split)) {
            throw IoError(std::string(kFashionMnistDir) +
                          ": holds no IDX files; reinstall it with: "
                          "apt-get install --reinstall dataset-fashion-mnist");
        }
        set_class_names(split, idx_class_names(kFashionMnistDir, split, IdxNames::fashion));
        split.description = std::string("Fashion-MNIST (") + kFashionMnistDir + ")";
        return split;
    }
    if (spec == "mnist") {
        if (!is_folder(kMnistDir) || !load_idx_folder(kMnistDir, split)) {
            throw IoError(
                std::string("MNIST not found: ") + kMnistDir +
                " does not hold train-images-idx3-ubyte.gz and the other three IDX files; put them "
                "there or pass their folder (Fashion-MNIST: apt-get install dataset-fashion-mnist)");
        }
        set_class_names(split, idx_class_names(kMnistDir, split, IdxNames::digits));
        split.description = std::string("MNIST (") + kMnistDir + ")";
        return split;
    }
    if (!is_folder(spec)) {
        std::error_code ec;
        throw IoError(spec +
                      (fs::exists(spec, ec) ? ": is a file, not a folder" : ": no such data set or folder") +
                      " (expected fashion-mnist, mnist, a folder of IDX files or a folder of images)");
    }
    if (load_idx_folder(spec, split)) {
        const bool fashion = lower(spec).find("fashion") != std::string::npos;
        set_class_names(split, idx_class_names(spec, split, fashion ? IdxNames::fashion : IdxNames::generic));
        split.description = std::string(fashion ? "Fashion-MNIST" : "IDX files") + " (" + spec + ")";
        return split;
    }
    if (is_segmentation_folder(spec)) return load_segmentation_folder(spec, options);
    return load_image_folder(spec, options);
}

}  // namespace lenz
