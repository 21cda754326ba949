using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// HTTP access to the Hub: the model-info API, file metadata and resumable, verified file downloads. Every request has
/// a time limit, redirects are followed a bounded number of times (the token is sent only to the endpoint itself), and
/// transient failures (429, 5xx, lost connections, timeouts) are retried at most <see cref="HubOptions.MaxRetries"/>
/// times with a doubling delay.
/// </summary>
internal sealed class HubClient : IDisposable
{
    const int MaxRedirects = 10;
    static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    readonly HubOptions _options;
    readonly HttpClient _http;
    readonly Uri _endpoint;
    readonly string? _token;

    public HubClient(HubOptions options)
    {
        _options = options;
        _endpoint = new Uri(options.ResolveEndpoint() + "/");
        _token = options.ResolveToken();
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = options.RequestTimeout,
            UseCookies = false,
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd($"Microsoft.ML.LoRA/{typeof(HubClient).Assembly.GetName().Version}");
    }

    /// <summary><c>{endpoint}/api/models/{id}/revision/{revision}?blobs=true</c>.</summary>
    public Uri ModelInfoUrl(HubModelId id) =>
        new(_endpoint, $"api/models/{id.RepoId}/revision/{Uri.EscapeDataString(id.Revision)}?blobs=true");

    /// <summary><c>{endpoint}/{id}/resolve/{commit}/{file}</c>.</summary>
    public Uri FileUrl(HubModelId id, string commit, string file) =>
        new(_endpoint, $"{id.RepoId}/resolve/{Uri.EscapeDataString(commit)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");

    /// <summary>Lists the repository at the id's revision: its commit sha and files.</summary>
    public Task<HubRepoInfo> GetRepoInfoAsync(HubModelId id, CancellationToken ct)
    {
        var url = ModelInfoUrl(id);
        return WithRetriesAsync($"Listing the files of model '{id}' at {url}", url, async () =>
        {
            var (response, _) = await SendAsync(HttpMethod.Get, url, null, stopAtLinkedEtag: false, ct).ConfigureAwait(false);
            using (response)
            {
                if (response.StatusCode != HttpStatusCode.OK) throw Failure(response, url, id, file: null, commit: null);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(_options.ReadTimeout);
                string json;
                try { json = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false); }
                catch (OperationCanceledException e) when (!ct.IsCancellationRequested) { throw new TransientFailure($"the listing did not arrive within {_options.ReadTimeout}", url, null, e); }
                catch (Exception e) when (e is IOException or HttpRequestException) { throw new TransientFailure($"the connection was lost ({e.Message})", url, null, e); }
                return HubRepoInfo.Parse(json, url);
            }
        }, ct);
    }

    /// <summary>
    /// Asks the Hub (HEAD) for a file's ETag and size, for listings that lack them. The ETag is the LFS SHA-256
    /// (<c>X-Linked-Etag</c>) or the git blob id (<c>ETag</c>).
    /// </summary>
    public Task<(string Etag, long? Size)> GetFileMetadataAsync(HubModelId id, string commit, string file, CancellationToken ct)
    {
        var url = FileUrl(id, commit, file);
        return WithRetriesAsync($"Reading the metadata of {file} of model '{id}' at {url}", url, async () =>
        {
            var (response, hub) = await SendAsync(HttpMethod.Head, url, null, stopAtLinkedEtag: true, ct).ConfigureAwait(false);
            using (response)
            {
                if (!response.IsSuccessStatusCode && !IsRedirect(response.StatusCode)) throw Failure(response, url, id, file, commit);
                var etag = hub.LinkedEtag ?? hub.Etag
                    ?? throw new HubException($"The Hub sent no ETag for {file} of model '{id}' ({url}), so the file can be neither checked nor cached.", url);
                return (etag, hub.LinkedSize ?? hub.ContentLength);
            }
        }, ct);
    }

    /// <summary>
    /// Downloads a file into <paramref name="blobPath"/>: bytes go to <c>{blob}.incomplete</c> (continued with a
    /// <c>Range</c> request when it already holds some), the size and digest are checked against the ETag, then the
    /// file is renamed into place. A corrupt or wrongly sized download is deleted and reported.
    /// </summary>
    public async Task DownloadAsync(HubModelId id, string commit, string file, string etag, long? expectedSize,
        string incompletePath, string blobPath, CancellationToken ct)
    {
        var url = FileUrl(id, commit, file);
        var size = await WithRetriesAsync($"Downloading {file} of model '{id}' from {url}", url,
            () => DownloadOnceAsync(url, id, commit, file, expectedSize, incompletePath, ct), ct).ConfigureAwait(false);

        var actual = new FileInfo(incompletePath).Length;
        if (size is long expected && actual != expected)
        {
            DeleteQuietly(incompletePath);
            throw new HubException($"The download of {file} of model '{id}' from {url} has {actual} bytes, but the Hub says it has {expected}; the partial file was deleted. Try again.", url);
        }
        var (algorithm, digest) = Digest(etag, incompletePath);
        if (digest is not null && !string.Equals(digest, etag, StringComparison.OrdinalIgnoreCase))
        {
            DeleteQuietly(incompletePath);
            throw new HubException($"The download of {file} of model '{id}' from {url} is corrupt: its {algorithm} is {digest}, but the Hub says {etag}; the partial file was deleted. Try again; if this persists, a proxy or mirror alters the file.", url);
        }
        File.Move(incompletePath, blobPath, overwrite: true);
    }

    /// <summary>One attempt; returns the file size when known. Throws <see cref="TransientFailure"/> for what a retry may fix.</summary>
    async Task<long?> DownloadOnceAsync(Uri url, HubModelId id, string commit, string file, long? expectedSize, string incompletePath, CancellationToken ct)
    {
        long have = File.Exists(incompletePath) ? new FileInfo(incompletePath).Length : 0;
        if (expectedSize is long limit && have > limit) { DeleteQuietly(incompletePath); have = 0; }
        if (expectedSize is long known && have == known && known > 0) return known;

        var (response, hub) = await SendAsync(HttpMethod.Get, url, have > 0 ? have : null, stopAtLinkedEtag: false, ct).ConfigureAwait(false);
        using (response)
        {
            long? total;
            if (response.StatusCode == HttpStatusCode.PartialContent && have > 0)
            {
                var range = response.Content.Headers.ContentRange;
                if (range?.From != have)
                {
                    DeleteQuietly(incompletePath);
                    throw new TransientFailure($"asked for bytes {have}- the server sent '{range}'; the download restarts from zero", url, 206);
                }
                total = range.Length;
            }
            else if (response.StatusCode == HttpStatusCode.OK)
            {
                have = 0;
                total = response.Content.Headers.ContentLength;
            }
            else if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                DeleteQuietly(incompletePath);
                throw new TransientFailure($"the server refused to continue at byte {have} (416); the download restarts from zero", url, 416);
            }
            else throw Failure(response, url, id, file, commit);

            var size = expectedSize ?? hub.LinkedSize ?? total;
            if (size is long s && total is long t && s != t)
            {
                DeleteQuietly(incompletePath);
                throw new HubException($"The download of {file} of model '{id}' from {url} would have {t} bytes, but the Hub says it has {s}; the partial file was deleted.", url, (int)response.StatusCode);
            }

            Directory.CreateDirectory(Path.GetDirectoryName(incompletePath)!);
            using var output = new FileStream(incompletePath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None, 1 << 16);
            output.SetLength(have);
            output.Position = have;
            Report(file, have, size);
            using var read = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var buffer = new byte[1 << 16];
            Stream body;
            try { body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false); }
            catch (Exception e) when (e is IOException or HttpRequestException) { throw new TransientFailure($"the connection was lost ({e.Message})", url, null, e); }
            using (body)
            {
                while (true)
                {
                    read.CancelAfter(_options.ReadTimeout);
                    int n;
                    try { n = await body.ReadAsync(buffer, read.Token).ConfigureAwait(false); }
                    catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                    {
                        throw new TransientFailure($"no data arrived for {_options.ReadTimeout.TotalSeconds:0.###} s after {have} of {Describe(size)} bytes", url, null, e);
                    }
                    catch (Exception e) when (e is IOException or HttpRequestException)
                    {
                        throw new TransientFailure($"the connection was lost after {have} of {Describe(size)} bytes ({e.Message})", url, null, e);
                    }
                    if (n == 0) break;
                    await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    have += n;
                    Report(file, have, size);
                }
            }
            output.Flush(flushToDisk: true);
            if (size is long expected && have < expected)
                throw new TransientFailure($"the connection closed after {have} of {expected} bytes", url, null);
            return size;
        }
    }

    static string Describe(long? size) => size?.ToString() ?? "?";

    void Report(string file, long done, long? total) => _options.Progress?.Report(new HubDownloadProgress(file, done, total));

    /// <summary>The digest the Hub's ETag is: SHA-256 (64 hex digits, LFS files) or git's blob SHA-1 (40, other files).</summary>
    static (string Algorithm, string? Digest) Digest(string etag, string path)
    {
        if (etag.Length == 64)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            return ("SHA-256", Convert.ToHexStringLower(SHA256.HashData(stream)));
        }
        if (etag.Length == 40)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            sha1.AppendData(Encoding.ASCII.GetBytes($"blob {stream.Length}\0"));
            var buffer = new byte[1 << 20];
            int n;
            while ((n = stream.Read(buffer)) > 0) sha1.AppendData(buffer, 0, n);
            return ("git blob SHA-1", Convert.ToHexStringLower(sha1.GetHashAndReset()));
        }
        return ("digest", null);
    }

    /// <summary>Sends a request, following redirects (at most <see cref="MaxRedirects"/>), and gathers the Hub's file headers.</summary>
    async Task<(HttpResponseMessage Response, HubHeaders Hub)> SendAsync(HttpMethod method, Uri url, long? rangeFrom, bool stopAtLinkedEtag, CancellationToken ct)
    {
        var hub = new HubHeaders();
        var current = url;
        for (var hop = 0; ; hop++)
        {
            var fromHub = SameOrigin(current, _endpoint);
            var request = new HttpRequestMessage(method, current);
            if (_token is not null && fromHub) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            if (rangeFrom is long from) request.Headers.Range = new RangeHeaderValue(from, null);
            request.Headers.AcceptEncoding.ParseAdd("identity");

            HttpResponseMessage response;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(_options.RequestTimeout);
                try
                {
                    response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                {
                    throw new TransientFailure($"no answer from {current} within {_options.RequestTimeout.TotalSeconds:0.###} s", current, null, e);
                }
                catch (HttpRequestException e)
                {
                    throw new TransientFailure($"cannot reach {current} ({e.Message})", current, null, e);
                }
            }
            if (fromHub) hub.Collect(response);
            if (!IsRedirect(response.StatusCode) || response.Headers.Location is null) return (response, hub);
            if (stopAtLinkedEtag && hub.LinkedEtag is not null) return (response, hub);
            var next = new Uri(current, response.Headers.Location);
            response.Dispose();
            if (hop >= MaxRedirects) throw new HubException($"{url} redirected more than {MaxRedirects} times (last to {next}).", url);
            if (next.Scheme != Uri.UriSchemeHttp && next.Scheme != Uri.UriSchemeHttps)
                throw new HubException($"{url} redirected to an unsupported URL {next}.", url);
            current = next;
        }
    }

    async Task<T> WithRetriesAsync<T>(string what, Uri url, Func<Task<T>> attempt, CancellationToken ct)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (TransientFailure f)
            {
                if (i >= Math.Max(0, _options.MaxRetries))
                {
                    var attempts = i + 1;
                    throw new HubException($"{what} failed after {attempts} attempt{(attempts == 1 ? "" : "s")}: {f.Message}.",
                        f.Url ?? url, f.StatusCode, f.InnerException) { IsUnavailable = true };
                }
                await Task.Delay(Backoff(i, f.RetryAfter), ct).ConfigureAwait(false);
            }
        }
    }

    TimeSpan Backoff(int retry, TimeSpan? retryAfter)
    {
        var delay = retryAfter ?? TimeSpan.FromTicks(_options.RetryDelay.Ticks * (1L << Math.Min(retry, 20)));
        return delay < TimeSpan.Zero ? TimeSpan.Zero : delay > MaxRetryDelay ? MaxRetryDelay : delay;
    }

    /// <summary>The exception for an unsuccessful answer: transient for 429/5xx, otherwise a message saying what to do.</summary>
    Exception Failure(HttpResponseMessage response, Uri url, HubModelId id, string? file, string? commit)
    {
        var status = (int)response.StatusCode;
        var code = Header(response, "X-Error-Code");
        var detail = Header(response, "X-Error-Message") is { } m ? $" The Hub says: {m}" : "";
        var answer = $"{status} {response.ReasonPhrase} from {url}";
        if (status is 429 or 500 or 502 or 503 or 504)
        {
            TimeSpan? retryAfter = response.Headers.RetryAfter?.Delta
                ?? (response.Headers.RetryAfter?.Date is { } date ? date - DateTimeOffset.UtcNow : null);
            return new TransientFailure($"the server answered {status} {response.ReasonPhrase}", url, status) { RetryAfter = retryAfter };
        }
        var what = file is null ? $"model '{id}'" : $"{file} of model '{id}'";
        return status switch
        {
            401 => new HubException(
                $"The Hub refused access to {what} ({answer}): the repository is private or gated, or does not exist. "
                + (_token is null
                    ? "Set HF_TOKEN (or HubOptions.Token) to an access token (https://huggingface.co/settings/tokens) of an account that can read it."
                    : "The token sent (HF_TOKEN or HubOptions.Token) was not accepted: check that it is valid and that its account can read the repository.")
                + detail, url, status),
            403 => new HubException(
                $"Access to {what} is forbidden ({answer}). If the repository is gated, accept its conditions on its Hub page, "
                + "and set HF_TOKEN (or HubOptions.Token) to a read token of the account that did." + detail, url, status),
            404 when code == "RevisionNotFound" => new HubException(
                $"Revision '{id.Revision}' of model '{id.RepoId}' was not found ({answer}): check the branch, tag or commit after '@'.{detail}", url, status),
            404 when code == "EntryNotFound" || (file is not null && code != "RepoNotFound") => new HubException(
                $"File {file ?? "?"} was not found in model '{id.RepoId}' at commit {commit} ({answer}).{detail}", url, status),
            404 when code == "RepoNotFound" => new HubException(
                $"Model '{id.RepoId}' was not found on the Hub at {_endpoint} ({answer}), and there is no local folder of that name: "
                + "check the id (a private repository also needs HF_TOKEN)." + detail, url, status),
            404 => new HubException(
                $"Model '{id.RepoId}' or its revision '{id.Revision}' was not found ({answer}), and there is no local folder of that name: "
                + "check the id and the revision." + detail, url, status),
            _ => new HubException($"The Hub could not serve {what} ({answer}).{detail}", url, status),
        };
    }

    static bool IsRedirect(HttpStatusCode status) => (int)status is 301 or 302 or 303 or 307 or 308;

    static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    static void DeleteQuietly(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>File headers the Hub sends on resolve answers (only those from the endpoint's own origin are trusted).</summary>
    sealed class HubHeaders
    {
        public string? LinkedEtag { get; private set; }
        public long? LinkedSize { get; private set; }
        public string? Etag { get; private set; }
        public long? ContentLength { get; private set; }

        public void Collect(HttpResponseMessage response)
        {
            LinkedEtag ??= CleanEtag(Header(response, "X-Linked-Etag"));
            LinkedSize ??= long.TryParse(Header(response, "X-Linked-Size"), out var size) && size >= 0 ? size : null;
            Etag ??= CleanEtag(response.Headers.ETag?.Tag);
            if (!IsRedirect(response.StatusCode)) ContentLength ??= response.Content.Headers.ContentLength;
        }

        static string? CleanEtag(string? raw)
        {
            if (string.IsNullOrWhiteSpace(raw)) return null;
            var tag = raw.Trim();
            if (tag.StartsWith("W/", StringComparison.Ordinal)) tag = tag[2..];
            tag = tag.Trim('"').ToLowerInvariant();
            return tag.Length == 0 ? null : tag;
        }
    }

    /// <summary>A failure that a retry may fix.</summary>
    sealed class TransientFailure : Exception
    {
        public TransientFailure(string message, Uri? url, int? statusCode, Exception? inner = null) : base(message, inner)
        {
            Url = url;
            StatusCode = statusCode;
        }

        public Uri? Url { get; }
        public int? StatusCode { get; }
        public TimeSpan? RetryAfter { get; init; }
    }
}
