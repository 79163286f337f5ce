#include "core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lenz/error.h"

namespace lenz {

bool is_folder(const std::filesystem::path& path) {
    std::error_code ec;
    return std::filesystem::is_directory(path, ec);
}

bool is_regular(const std::filesystem::path& path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec);
}

void check_not_directory(const std::string& path, const std::string& what) {
    std::error_code error;
    if (std::filesystem::is_directory(path, error))
        throw IoError(path + ": is a directory, not a file (expected " + what + ")");
}

int64_t file_size_at_most(const std::string& path, int64_t max_bytes, const std::string& what,
                          const std::string& limit) {
    check_not_directory(path, what);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path + ": cannot open " + what + ": " + std::strerror(errno));
    in.seekg(0, std::ios::end);
    const int64_t size = in.tellg();
    if (size < 0) throw IoError(path + ": cannot tell " + what + "'s size");
    // Checked before reading, so that a huge file is refused without reading it into memory.
    if (size > max_bytes) throw FormatError(path + ": larger than " + limit);
    return size;
}

std::string read_whole_file(const std::string& path, int64_t max_bytes, const std::string& what,
                            const std::string& limit) {
    const int64_t size = file_size_at_most(path, max_bytes, what, limit);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path + ": cannot open " + what + ": " + std::strerror(errno));
    std::string bytes(static_cast<size_t>(size), '\0');
    in.read(bytes.data(), size);
    if (in.gcount() != size)
        throw IoError(path + ": could not read " + what + " (" + std::to_string(in.gcount()) + " of " +
                      std::to_string(size) + " bytes)");
    return bytes;
}

void write_all(int fd, const char* data, size_t size, const std::string& path) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw IoError(path + ": cannot write: " + std::strerror(errno));
        }
        data += n;
        size -= static_cast<size_t>(n);
    }
}

void write_atomically(const std::string& path, const std::string& what,
                      const std::function<void(int fd, const std::string& tmp)>& fill) {
    const std::filesystem::path target(path);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError(tmp + ": cannot create " + what + ": " + std::strerror(errno));
    try {
        fill(fd, tmp);
        if (::fsync(fd) != 0) throw IoError(tmp + ": cannot flush to disk: " + std::strerror(errno));
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw IoError(tmp + ": cannot close: " + std::strerror(errno));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw IoError(path + ": cannot replace " + what + ": " + std::strerror(err));
    }
    // Make the rename itself durable.
    const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace lenz
