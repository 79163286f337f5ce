// Segmentation folders: images with a mask each, the class of every pixel, in the layout users of
// segmentation keep (classes.txt, images/, masks/) or in Pascal VOC's own. Every image and mask is
// checked before training starts: a missing mask, a size that differs from its image's, a value
// that is neither a class nor kIgnorePixel, each one line naming the file.
#include "data/segmentation.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/files.h"
#include "lenz/data.h"
#include "lenz/error.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;

// Pascal VOC's 20 classes after the background, in the order of its masks' indices.
const std::vector<std::string> kVocClasses{
    "background", "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",
    "car",        "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",
    "motorbike",  "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};

// One image and its mask.
struct Pair {
    fs::path image, mask;
};

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// DIR/classes.txt: one name a line (blank lines at the end allowed); at most 255 classes, since 255
// marks ignored pixels.
std::vector<std::string> read_class_names(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw IoError(path.string() + ": cannot open");
    std::vector<std::string> names;
    std::set<std::string> seen;
    std::string line;
    int64_t number = 0, blank = 0;
    while (std::getline(in, line)) {
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) {
            ++blank;
            continue;
        }
        if (blank > 0)
            throw FormatError(path.string() + ":" + std::to_string(number) +
                              ": a class name after a blank line (line k names class k, so blank lines may "
                              "only end the file)");
        if (!seen.insert(line).second)
            throw FormatError(path.string() + ":" + std::to_string(number) + ": class '" + line +
                              "' is named twice");
        names.push_back(line);
    }
    if (names.empty())
        throw FormatError(path.string() + ": names no class (one name a line; line k is class k)");
    if (names.size() > kIgnorePixel)
        throw FormatError(path.string() + ": names " + std::to_string(names.size()) +
                          " classes; a mask holds at most 255 (0-254), as 255 marks ignored pixels");
    return names;
}

// The images of a folder (any image extension), each with the mask of its name in `masks`, in name
// order; a mask without an image, or an image without a mask, is an error.
std::vector<Pair> pair_up(const fs::path& images, const fs::path& masks) {
    if (!is_folder(masks))
        throw FormatError(images.string() + ": no masks beside it (expected " + masks.string() +
                          "/NAME.png)");
    std::map<std::string, fs::path> by_stem;
    for (const fs::directory_entry& e : fs::directory_iterator(images)) {
        const fs::path& p = e.path();
        if (!e.is_regular_file() || p.filename().string().front() == '.' ||
            !is_image_extension(lower(p.extension().string())))
            continue;
        const std::string stem = p.stem().string();
        if (by_stem.count(stem))
            throw FormatError(p.string() + ": a second image named " + stem + " (" +
                              by_stem[stem].filename().string() + " too): which one does " + stem +
                              ".png's mask belong to?");
        by_stem[stem] = p;
    }
    if (by_stem.empty()) throw FormatError(images.string() + ": holds no image");
    std::vector<Pair> pairs;
    for (const auto& [stem, image] : by_stem) {
        const fs::path mask = masks / (stem + ".png");
        if (!is_regular(mask))
            throw FormatError(image.string() + ": no mask (expected " + mask.string() + ")");
        pairs.push_back({image, mask});
    }
    for (const fs::directory_entry& e : fs::directory_iterator(masks)) {
        const fs::path& p = e.path();
        if (e.is_regular_file() && lower(p.extension().string()) == ".png" &&
            !by_stem.count(p.stem().string()))
            throw FormatError(p.string() + ": a mask without an image (expected " +
                              (images / p.stem()).string() + ".png, .jpg or another image file)");
    }
    return pairs;
}

// VOC's list files: one image id a line.
std::vector<Pair> voc_pairs(const fs::path& root, const std::string& list) {
    const fs::path path = root / "ImageSets" / "Segmentation" / list;
    std::ifstream in(path);
    if (!in) throw IoError(path.string() + ": cannot open (Pascal VOC lists its segmentation images there)");
    std::vector<Pair> pairs;
    std::string id;
    while (in >> id) {
        Pair p{root / "JPEGImages" / (id + ".jpg"), root / "SegmentationClass" / (id + ".png")};
        if (!is_regular(p.image))
            throw FormatError(path.string() + ": lists " + id + ", but " + p.image.string() + " is missing");
        if (!is_regular(p.mask))
            throw FormatError(path.string() + ": lists " + id + ", but " + p.mask.string() + " is missing");
        pairs.push_back(std::move(p));
    }
    if (pairs.empty()) throw FormatError(path.string() + ": lists no image");
    return pairs;
}

// The most common size among the training images, from their headers (ties: the larger), and the
// most common channel count (ties: 3), where the options leave them to the data.
DataOptions with_common_size(const std::vector<Pair>& train, DataOptions o) {
    if (o.height > 0 && o.width > 0 && o.channels > 0) return o;
    std::map<std::pair<int64_t, int64_t>, int64_t> sizes;
    int64_t grey = 0, colour = 0;
    for (const Pair& p : train) {
        const ImageInfo info = read_image_info(p.image.string());
        ++sizes[{info.height, info.width}];
        ++(info.channels == 1 ? grey : colour);
    }
    if (o.height <= 0 || o.width <= 0) {
        std::pair<int64_t, int64_t> best{0, 0};
        int64_t best_count = 0;
        for (const auto& [size, count] : sizes)
            if (std::tuple(count, size.first * size.second, size.first) >
                std::tuple(best_count, best.first * best.second, best.first))
                best = size, best_count = count;
        o.height = best.first, o.width = best.second;
    }
    if (o.channels <= 0) o.channels = colour >= grey ? 3 : 1;
    return o;
}

// Reads, checks and fits one image and its mask, appending them to `set`.
void append_pair(ImageSet& set, const Pair& p) {
    const Image image = read_image(p.image.string());
    const Image mask = read_mask(p.mask.string());
    if (mask.height != image.height || mask.width != image.width)
        throw FormatError(p.mask.string() + ": the mask is " + std::to_string(mask.height) + "x" +
                          std::to_string(mask.width) + " but its image " + p.image.filename().string() +
                          " is " + std::to_string(image.height) + "x" + std::to_string(image.width));
    const auto classes = static_cast<int64_t>(set.class_names.size());
    for (size_t i = 0; i < mask.pixels.size(); ++i) {
        const uint8_t v = mask.pixels[i];
        if (v < classes || v == kIgnorePixel) continue;
        const auto at = static_cast<int64_t>(i);
        throw FormatError(p.mask.string() + ": pixel (row " + std::to_string(at / mask.width) + ", column " +
                          std::to_string(at % mask.width) + ") is " + std::to_string(v) +
                          ", neither a class (0-" + std::to_string(classes - 1) + ") nor 255 (ignored)");
    }
    const Image fitted = fit_image(image, set.height, set.width, set.channels);
    const Image fitted_mask = fit_mask(mask, set.height, set.width);
    const int64_t plane = set.height * set.width;
    const size_t base = set.pixels.size();
    set.pixels.resize(base + static_cast<size_t>(plane * set.channels));
    for (int64_t c = 0; c < set.channels; ++c)
        for (int64_t i = 0; i < plane; ++i)
            set.pixels[base + static_cast<size_t>(c * plane + i)] =
                fitted.pixels[static_cast<size_t>(i * set.channels + c)];
    set.masks.insert(set.masks.end(), fitted_mask.pixels.begin(), fitted_mask.pixels.end());
}

ImageSet load_pairs(const std::vector<Pair>& pairs, const DataOptions& o,
                    const std::vector<std::string>& names) {
    ImageSet set;
    set.height = o.height, set.width = o.width, set.channels = o.channels;
    set.class_names = names;
    for (const Pair& p : pairs) append_pair(set, p);
    return set;
}

// Holds out round(val_split * count) pairs (at least one, never all), chosen by a seeded shuffle;
// both sides keep name order.
void split_off(std::vector<Pair>& train, std::vector<Pair>& test, const DataOptions& o,
               const fs::path& where) {
    if (!(o.val_split > 0.0 && o.val_split < 1.0))
        throw Error(where.string() +
                    ": no test/ folder to evaluate on; add images/test/ and masks/test/ or hold "
                    "out part of the images with --val-split (e.g. --val-split 0.2)");
    if (train.size() < 2)
        throw FormatError(where.string() + ": holds " + std::to_string(train.size()) +
                          " image, too few to hold some out for --val-split (need at least 2)");
    const size_t count = train.size();
    const size_t held = std::clamp<size_t>(
        static_cast<size_t>(std::llround(o.val_split * static_cast<double>(count))), 1, count - 1);
    std::vector<size_t> order(count);
    for (size_t i = 0; i < count; ++i) order[i] = i;
    uint64_t state = o.seed ^ 0x5345474d454e54ull;  // SplitMix64, as the image folders' split
    const auto next = [&state] {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    for (size_t i = count - 1; i > 0; --i) std::swap(order[i], order[next() % (i + 1)]);
    std::vector<bool> in_test(count, false);
    for (size_t i = 0; i < held; ++i) in_test[order[i]] = true;
    std::vector<Pair> kept;
    for (size_t i = 0; i < count; ++i) (in_test[i] ? test : kept).push_back(train[i]);
    train = std::move(kept);
}

DataSplit load_split(const std::vector<Pair>& train, const std::vector<Pair>& test,
                     const DataOptions& options, const std::vector<std::string>& names) {
    const DataOptions o = with_common_size(train, options);
    return {load_pairs(train, o, names), load_pairs(test, o, names), "", {}};
}

std::string shape_and_split(const DataSplit& s, const std::string& how) {
    return std::to_string(s.train.height) + "x" + std::to_string(s.train.width) + "x" +
           std::to_string(s.train.channels) + ", " + how + ", " + std::to_string(s.train.class_names.size()) +
           " classes";
}

// The VOC root under DIR: DIR itself, DIR/VOC2012 or DIR/VOCdevkit/VOC2012 (and other years).
std::optional<fs::path> voc_root(const fs::path& dir) {
    const auto is_voc = [](const fs::path& p) {
        return is_folder(p / "JPEGImages") && is_folder(p / "SegmentationClass") &&
               is_folder(p / "ImageSets" / "Segmentation");
    };
    if (is_voc(dir)) return dir;
    for (const fs::path& parent : {dir, dir / "VOCdevkit"}) {
        if (!is_folder(parent)) continue;
        std::vector<fs::path> years;
        for (const fs::directory_entry& e : fs::directory_iterator(parent))
            if (e.path().filename().string().rfind("VOC", 0) == 0 && is_voc(e.path()))
                years.push_back(e.path());
        std::sort(years.begin(), years.end());
        if (!years.empty()) return years.back();
    }
    return std::nullopt;
}

}  // namespace

bool is_segmentation_folder(const std::filesystem::path& dir) {
    return (is_regular(dir / "classes.txt") && is_folder(dir / "masks")) || voc_root(dir).has_value();
}

DataSplit load_segmentation_folder(const std::filesystem::path& dir, const DataOptions& options) {
    if (const std::optional<fs::path> root = voc_root(dir); root && !is_regular(dir / "classes.txt")) {
        DataSplit s =
            load_split(voc_pairs(*root, "train.txt"), voc_pairs(*root, "val.txt"), options, kVocClasses);
        s.description = "Pascal VOC segmentation in " + root->string() + " (" +
                        shape_and_split(s, "train.txt and val.txt") + ")";
        return s;
    }
    const std::vector<std::string> names = read_class_names(dir / "classes.txt");
    const fs::path images = dir / "images", masks = dir / "masks";
    if (!is_folder(images)) throw FormatError(dir.string() + ": has classes.txt and masks/ but no images/");
    DataSplit s;
    if (is_folder(images / "test")) {
        if (!is_folder(images / "train")) throw FormatError(images.string() + ": has test/ but no train/");
        s = load_split(pair_up(images / "train", masks / "train"), pair_up(images / "test", masks / "test"),
                       options, names);
        s.description =
            "segmentation images in " + dir.string() + " (" + shape_and_split(s, "train/ and test/") + ")";
        return s;
    }
    const bool nested = is_folder(images / "train");
    std::vector<Pair> train = nested ? pair_up(images / "train", masks / "train") : pair_up(images, masks);
    std::vector<Pair> test;
    split_off(train, test, options, nested ? images / "train" : images);
    s = load_split(train, test, options, names);
    s.description = "segmentation images in " + dir.string() + " (" +
                    shape_and_split(s, std::to_string(std::lround(options.val_split * 100)) +
                                           "% held out, seed " + std::to_string(options.seed)) +
                    ")";
    return s;
}

}  // namespace lenz
