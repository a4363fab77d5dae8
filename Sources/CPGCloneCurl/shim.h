#pragma once
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed wrapper per
// argument type (PLATFORM.md §1).
static inline CURLcode CPGCloneCurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CPGCloneCurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CPGCloneCurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CPGCloneCurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CPGCloneCurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*CPGCloneCurl_data_callback)(char *buffer, size_t size, size_t count, void *context);
typedef int (*CPGCloneCurl_progress_callback)(void *context, curl_off_t download_total, curl_off_t downloaded,
                                              curl_off_t upload_total, curl_off_t uploaded);

static inline CURLcode CPGCloneCurl_easy_setopt_data_callback(CURL *handle, CURLoption option,
                                                             CPGCloneCurl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CPGCloneCurl_easy_setopt_progress_callback(CURL *handle, CURLoption option,
                                                                 CPGCloneCurl_progress_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CPGCloneCurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode CPGCloneCurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}
