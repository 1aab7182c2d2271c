#include "base/png.h"

#include <png.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <memory>

namespace base {
namespace {

Result<void> CheckGeometry(uint32_t width, uint32_t height) {
  if (width == 0 || height == 0 || width > kMaxPngSide || height > kMaxPngSide ||
      uint64_t{width} * height > kMaxPngPixels) {
    return MakeError(ErrorKind::kUsage,
                     "image size {}x{}: each side must be 1 to {}, at most {} pixels", width,
                     height, kMaxPngSide, kMaxPngPixels);
  }
  return {};
}

Result<std::vector<uint8_t>> Encode(const uint8_t* rgb, uint32_t width, uint32_t height,
                                    uint32_t row_bytes) {
  png_image image = {};
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = PNG_FORMAT_RGB;
  // libpng's defaults (filtering on). PNG_IMAGE_FLAG_FAST was measured
  // slower on a gradient screen (174 ms and 1.8 MB against 34 ms and 4 KB
  // for 1024x768) though faster on noise (13 ms against 35).
  png_alloc_size_t size = 0;
  if (png_image_write_to_memory(&image, nullptr, &size, 0, rgb, static_cast<png_int_32>(row_bytes),
                                nullptr) == 0) {
    return MakeError(ErrorKind::kInternal, "PNG encoder: {}", image.message);
  }
  std::vector<uint8_t> out(size);
  if (png_image_write_to_memory(&image, out.data(), &size, 0, rgb,
                                static_cast<png_int_32>(row_bytes), nullptr) == 0) {
    return MakeError(ErrorKind::kInternal, "PNG encoder: {}", image.message);
  }
  out.resize(size);
  return out;
}

}  // namespace

Result<std::vector<uint8_t>> EncodeXrgbPng(const uint8_t* pixels, uint32_t width, uint32_t height,
                                           uint32_t stride) {
  TRY(CheckGeometry(width, height));
  if (pixels == nullptr || stride < width * 4u) {
    return MakeError(ErrorKind::kUsage, "image {}x{}: stride {} is below {} bytes", width, height,
                     stride, width * 4u);
  }
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  for (uint32_t y = 0; y < height; ++y) {
    const uint8_t* row = pixels + static_cast<size_t>(y) * stride;
    uint8_t* out = &rgb[static_cast<size_t>(y) * width * 3];
    for (uint32_t x = 0; x < width; ++x) {
      out[x * 3 + 0] = row[x * 4 + 2];  // red
      out[x * 3 + 1] = row[x * 4 + 1];  // green
      out[x * 3 + 2] = row[x * 4 + 0];  // blue
    }
  }
  return Encode(rgb.data(), width, height, width * 3);
}

Result<void> WriteXrgbPng(const std::string& path, const uint8_t* pixels, uint32_t width,
                          uint32_t height, uint32_t stride) {
  std::vector<uint8_t> png = TRY(EncodeXrgbPng(pixels, width, height, stride));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "wb"),
                                                       &std::fclose);
  if (!file || std::fwrite(png.data(), 1, png.size(), file.get()) != png.size() ||
      std::fflush(file.get()) != 0) {
    return MakeErrnoError(ErrorKind::kNoInput, "cannot write PNG {}", path);
  }
  return {};
}

Result<std::vector<uint8_t>> EncodeRgbPng(const RgbImage& image) {
  TRY(CheckGeometry(image.width, image.height));
  if (image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return MakeError(ErrorKind::kUsage, "image {}x{}: {} bytes of pixels, expected {}", image.width,
                     image.height, image.rgb.size(),
                     static_cast<size_t>(image.width) * image.height * 3);
  }
  return Encode(image.rgb.data(), image.width, image.height, image.width * 3);
}

Result<RgbImage> DecodePng(const std::vector<uint8_t>& data, const std::string& name) {
  png_image image = {};
  image.version = PNG_IMAGE_VERSION;
  if (png_image_begin_read_from_memory(&image, data.data(), data.size()) == 0) {
    return MakeError(ErrorKind::kBadImage, "{}: not a PNG libpng can read: {}", name,
                     image.message);
  }
  if (image.width == 0 || image.height == 0 || image.width > kMaxPngSide ||
      image.height > kMaxPngSide || uint64_t{image.width} * image.height > kMaxPngPixels) {
    png_image_free(&image);
    return MakeError(ErrorKind::kBadImage,
                     "{}: PNG of {}x{}: each side must be 1 to {}, at most {} pixels", name,
                     image.width, image.height, kMaxPngSide, kMaxPngPixels);
  }
  image.format = PNG_FORMAT_RGB;
  RgbImage out;
  out.width = image.width;
  out.height = image.height;
  out.rgb.resize(static_cast<size_t>(image.width) * image.height * 3);
  png_color black = {0, 0, 0};
  if (png_image_finish_read(&image, &black, out.rgb.data(),
                            static_cast<png_int_32>(image.width * 3), nullptr) == 0) {
    std::string message = image.message;
    png_image_free(&image);
    return MakeError(ErrorKind::kBadImage, "{}: corrupt PNG: {}", name, message);
  }
  return out;
}

Result<RgbImage> ReadPng(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeErrnoError(ErrorKind::kNoInput, "cannot read PNG {}", path);
  constexpr size_t kMaxFileBytes = size_t{256} << 20;
  std::vector<uint8_t> data;
  char buffer[64 * 1024];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    data.insert(data.end(), buffer, buffer + in.gcount());
    if (data.size() > kMaxFileBytes) {
      return MakeError(ErrorKind::kBadImage, "{}: larger than {} MiB", path, kMaxFileBytes >> 20);
    }
  }
  if (in.bad()) return MakeErrnoError(ErrorKind::kNoInput, "cannot read PNG {}", path);
  return DecodePng(data, path);
}

}  // namespace base
