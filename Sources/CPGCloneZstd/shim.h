#pragma once
// For ZSTD_getCParams and ZSTD_estimateCCtxSize_usingCParams, which the shared libzstd exports.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>
