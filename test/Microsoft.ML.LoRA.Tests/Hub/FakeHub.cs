using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.LoRA.Tests.Hub;

/// <summary>One request the fake Hub received.</summary>
/// <param name="Method">GET or HEAD.</param>
/// <param name="Target">The request target as sent (path and query).</param>
/// <param name="Path">The path with the fake Hub's prefix removed; null when the request was outside the prefix.</param>
/// <param name="File">The repository file the request is about (resolve and CDN requests).</param>
/// <param name="ServesContent">True for a GET answered with the file's bytes (a CDN request, or a resolve of a non-LFS file).</param>
/// <param name="ToCdn">True when the request went to the CDN (another port, hence another origin).</param>
internal sealed record HubRequest(string Method, string Target, string? Path, IReadOnlyDictionary<string, string> Headers, string? File, bool ServesContent, bool ToCdn = false)
{
    public bool IsApi => Path?.StartsWith("/api/", StringComparison.Ordinal) == true;

    public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;
}

/// <summary>What the fake Hub does instead of answering normally.</summary>
internal abstract record Fault
{
    /// <summary>Answers with this status and no body.</summary>
    public sealed record Status(int Code) : Fault;

    /// <summary>Announces the whole body, sends <paramref name="Bytes"/> of it, and closes the connection.</summary>
    public sealed record DropAfter(int Bytes) : Fault;

    /// <summary>Sends <paramref name="Bytes"/> of the body, then nothing more until the server stops.</summary>
    public sealed record StallAfter(int Bytes) : Fault;

    /// <summary>Changes one byte in the middle of the body (same length).</summary>
    public sealed record Corrupt : Fault;

    /// <summary>Sends only the first <paramref name="Bytes"/>, announcing that length.</summary>
    public sealed record Truncate(int Bytes) : Fault;

    /// <summary>Ignores a Range header and sends the whole file with 200.</summary>
    public sealed record IgnoreRange : Fault;
}

/// <summary>A repository of the fake Hub: commits (file sets), branches pointing to them, and an optional required token.</summary>
internal sealed class FakeRepo
{
    readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, byte[]>> _commits = new();
    readonly ConcurrentDictionary<string, string> _branches = new();
    int _count;

    public FakeRepo(string id, string? requiredToken)
    {
        Id = id;
        RequiredToken = requiredToken;
    }

    public string Id { get; }

    public string? RequiredToken { get; }

    /// <summary>Adds a commit holding <paramref name="files"/> and points <paramref name="branch"/> to it; returns its sha.</summary>
    public string Commit(IReadOnlyDictionary<string, byte[]> files, string branch = "main")
    {
        var n = Interlocked.Increment(ref _count);
        var sha = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes($"{Id}#{n}")));
        _commits[sha] = new Dictionary<string, byte[]>(files, StringComparer.Ordinal);
        _branches[branch] = sha;
        return sha;
    }

    /// <summary>The commit a revision (branch or full sha) stands for.</summary>
    public string? Resolve(string revision) =>
        _branches.TryGetValue(revision, out var sha) ? sha : _commits.ContainsKey(revision) ? revision : null;

    public IReadOnlyDictionary<string, byte[]> Files(string commit) => _commits[commit];

    /// <summary>Files stored in LFS (the weights), as on the real Hub.</summary>
    public static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal) || file.EndsWith(".bin", StringComparison.Ordinal);
}

/// <summary>
/// An HTTP/1.1 server on 127.0.0.1 (free ports) that imitates the Hub endpoints the library uses:
/// <c>GET /api/models/{id}/revision/{rev}</c>, <c>GET|HEAD /{id}/resolve/{rev}/{file}</c> (LFS files redirect to
/// <c>/cdn/{sha256}</c> on a second port, as the Hub redirects to its CDN on another host), with Range support. It records every request and can be
/// told to fail some of them. One request per connection; every read and wait is time-limited.
/// </summary>
internal sealed class FakeHub : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly TcpListener _cdnListener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource _stop = new();
    readonly Task[] _acceptLoops;
    readonly ConcurrentBag<Task> _handlers = new();
    readonly ConcurrentDictionary<string, FakeRepo> _repos = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, (string File, byte[] Bytes)> _cdn = new(StringComparer.Ordinal);
    readonly List<HubRequest> _requests = new();
    readonly List<(Func<HubRequest, bool> When, Fault Fault, int Left)> _faults = new();

    /// <param name="pathPrefix">A path the endpoint lives under (e.g. <c>/mirror</c>); requests outside it get 404.</param>
    public FakeHub(string pathPrefix = "")
    {
        PathPrefix = pathPrefix.TrimEnd('/');
        _listener.Start();
        _cdnListener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        CdnPort = ((IPEndPoint)_cdnListener.LocalEndpoint).Port;
        _acceptLoops = new[] { Task.Run(() => AcceptLoopAsync(_listener, cdn: false)), Task.Run(() => AcceptLoopAsync(_cdnListener, cdn: true)) };
    }

    public int Port { get; }

    public int CdnPort { get; }

    public string PathPrefix { get; }

    /// <summary>The base URL to give as the Hub endpoint.</summary>
    public string Endpoint => $"http://127.0.0.1:{Port}{PathPrefix}";

    /// <summary>When false, the API lists only file names (no size, blobId or lfs), like <c>model_info</c> without <c>blobs=true</c>.</summary>
    public bool ListFileMetadata { get; set; } = true;

    public IReadOnlyList<HubRequest> Requests { get { lock (_requests) return _requests.ToList(); } }

    /// <summary>Requests that fetched a file (resolve, HEAD or CDN), i.e. anything but the listing API.</summary>
    public IReadOnlyList<HubRequest> FileRequests => Requests.Where(r => r.File is not null).ToList();

    public void ClearRequests() { lock (_requests) _requests.Clear(); }

    /// <summary>Creates a repository whose <c>main</c> holds <paramref name="files"/>.</summary>
    public FakeRepo AddRepo(string id, IReadOnlyDictionary<string, byte[]> files, string? requiredToken = null)
    {
        var repo = new FakeRepo(id, requiredToken);
        _repos[id] = repo;
        Publish(repo, files);
        repo.Commit(files);
        return repo;
    }

    /// <summary>Adds a commit to an existing repository (and makes its blobs available).</summary>
    public string Push(FakeRepo repo, IReadOnlyDictionary<string, byte[]> files, string branch = "main")
    {
        Publish(repo, files);
        return repo.Commit(files, branch);
    }

    /// <summary>The next <paramref name="times"/> requests matching <paramref name="when"/> get <paramref name="fault"/>.</summary>
    public void InjectFault(Func<HubRequest, bool> when, Fault fault, int times = 1)
    {
        lock (_faults) _faults.Add((when, fault, times));
    }

    /// <summary>Faults the next GETs that serve <paramref name="file"/>'s bytes.</summary>
    public void InjectContentFault(string file, Fault fault, int times = 1) =>
        InjectFault(r => r.ServesContent && r.File == file, fault, times);

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static string GitBlobId(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.ASCII.GetBytes($"blob {bytes.Length}\0").Concat(bytes).ToArray()));

    void Publish(FakeRepo repo, IReadOnlyDictionary<string, byte[]> files)
    {
        foreach (var (name, bytes) in files)
            if (FakeRepo.IsLfs(name)) _cdn.TryAdd(Sha256(bytes), (name, bytes));
    }

    async Task AcceptLoopAsync(TcpListener listener, bool cdn)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            _handlers.Add(Task.Run(() => HandleAsync(client, cdn)));
        }
    }

    async Task HandleAsync(TcpClient client, bool cdn)
    {
        using (client)
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                var stream = client.GetStream();
                var head = await ReadHeadAsync(stream, timeout.Token);
                if (head is null) return;
                var (request, reply) = cdn ? RouteCdn(head) : Route(head);
                lock (_requests) _requests.Add(request);
                await WriteAsync(stream, request, reply, TakeFault(request), timeout.Token);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // the client went away or the server is stopping
            }
        }
    }

    static async Task<string?> ReadHeadAsync(NetworkStream stream, CancellationToken ct)
    {
        var bytes = new List<byte>();
        var buffer = new byte[1];
        while (bytes.Count < 65536)
        {
            if (await stream.ReadAsync(buffer, ct) == 0) return null;
            bytes.Add(buffer[0]);
            var n = bytes.Count;
            if (n >= 4 && bytes[n - 4] == '\r' && bytes[n - 3] == '\n' && bytes[n - 2] == '\r' && bytes[n - 1] == '\n')
                return Encoding.ASCII.GetString(bytes.ToArray());
        }
        return null;
    }

    Fault? TakeFault(HubRequest request)
    {
        lock (_faults)
        {
            for (var i = 0; i < _faults.Count; i++)
            {
                var (when, fault, left) = _faults[i];
                if (left <= 0 || !when(request)) continue;
                _faults[i] = (when, fault, left - 1);
                return fault;
            }
        }
        return null;
    }

    sealed record Reply(int Status, Dictionary<string, string> Headers, byte[] Body, bool IsContent = false);

    static Reply Error(int status, string? code = null, string? message = null)
    {
        var headers = new Dictionary<string, string>();
        if (code is not null) headers["X-Error-Code"] = code;
        if (message is not null) headers["X-Error-Message"] = message;
        return new Reply(status, headers, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { error = message ?? code ?? "error" })));
    }

    static (string Method, string Target, Dictionary<string, string> Headers) Parse(string head)
    {
        var lines = head.Split("\r\n");
        var start = lines[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1).Where(l => l.Contains(':')))
            headers[line[..line.IndexOf(':')].Trim()] = line[(line.IndexOf(':') + 1)..].Trim();
        return (start[0], start.Length > 1 ? start[1] : "/", headers);
    }

    (HubRequest, Reply) RouteCdn(string head)
    {
        var (method, target, headers) = Parse(head);
        var path = target.Split('?')[0];
        if (!path.StartsWith("/cdn/", StringComparison.Ordinal) || !_cdn.TryGetValue(path[5..], out var blob))
            return (new HubRequest(method, target, path, headers, null, false, ToCdn: true), Error(404));
        return (new HubRequest(method, target, path, headers, blob.File, method == "GET", ToCdn: true), Content(blob.Bytes, headers, Sha256(blob.Bytes), null));
    }

    (HubRequest, Reply) Route(string head)
    {
        var (method, target, headers) = Parse(head);
        var rawPath = target.Split('?')[0];
        if (rawPath != PathPrefix && !rawPath.StartsWith(PathPrefix + "/", StringComparison.Ordinal))
            return (new HubRequest(method, target, null, headers, null, false), Error(404, message: "outside the endpoint"));
        var path = rawPath[PathPrefix.Length..];

        if (path.StartsWith("/api/models/", StringComparison.Ordinal))
        {
            var request = new HubRequest(method, target, path, headers, null, false);
            var rest = path["/api/models/".Length..];
            var at = rest.LastIndexOf("/revision/", StringComparison.Ordinal);
            if (at < 0) return (request, Error(404));
            var (repo, commit, error) = Lookup(rest[..at], Uri.UnescapeDataString(rest[(at + "/revision/".Length)..]), headers);
            return (request, error ?? new Reply(200, new() { ["Content-Type"] = "application/json" }, ModelInfo(repo!, commit!)));
        }

        var resolve = path.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve > 0)
        {
            var rest = path[(resolve + "/resolve/".Length)..];
            var slash = rest.IndexOf('/');
            var file = slash < 0 ? "" : Uri.UnescapeDataString(rest[(slash + 1)..]);
            var lfs = FakeRepo.IsLfs(file);
            var request = new HubRequest(method, target, path, headers, file, method == "GET" && !lfs);
            if (slash < 0) return (request, Error(404));
            var (repo, commit, error) = Lookup(path[1..resolve], Uri.UnescapeDataString(rest[..slash]), headers);
            if (error is not null) return (request, error);
            if (!repo!.Files(commit!).TryGetValue(file, out var bytes))
                return (request, Error(404, "EntryNotFound", $"{file} does not exist on \"{commit}\""));
            if (!lfs) return (request, Content(bytes, headers, GitBlobId(bytes), commit));
            var sha = Sha256(bytes);
            return (request, new Reply(302, new()
            {
                ["Location"] = $"http://127.0.0.1:{CdnPort}/cdn/{sha}",
                ["X-Linked-Etag"] = $"\"{sha}\"",
                ["X-Linked-Size"] = bytes.Length.ToString(),
                ["ETag"] = $"\"{sha}\"",
                ["X-Repo-Commit"] = commit!,
            }, Array.Empty<byte>()));
        }
        return (new HubRequest(method, target, path, headers, null, false), Error(404));
    }

    (FakeRepo? Repo, string? Commit, Reply? Error) Lookup(string repoId, string revision, IReadOnlyDictionary<string, string> headers)
    {
        if (!_repos.TryGetValue(repoId, out var repo))
            return (null, null, Error(404, "RepoNotFound", "Repository not found"));
        if (repo.RequiredToken is not null && (!headers.TryGetValue("Authorization", out var auth) || auth != $"Bearer {repo.RequiredToken}"))
            return (null, null, Error(401, "GatedRepo", $"Access to model {repoId} is restricted. You must be authenticated to access it."));
        var commit = repo.Resolve(revision);
        return commit is null ? (null, null, Error(404, "RevisionNotFound", $"Invalid rev id: {revision}")) : (repo, commit, null);
    }

    byte[] ModelInfo(FakeRepo repo, string commit)
    {
        var siblings = repo.Files(commit).OrderBy(f => f.Key, StringComparer.Ordinal).Select(f =>
        {
            var entry = new Dictionary<string, object> { ["rfilename"] = f.Key };
            if (!ListFileMetadata) return entry;
            entry["size"] = f.Value.Length;
            if (FakeRepo.IsLfs(f.Key))
            {
                var sha = Sha256(f.Value);
                var pointer = Encoding.ASCII.GetBytes($"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {f.Value.Length}\n");
                entry["blobId"] = GitBlobId(pointer);
                entry["lfs"] = new { sha256 = sha, size = f.Value.Length, pointerSize = pointer.Length };
            }
            else entry["blobId"] = GitBlobId(f.Value);
            return entry;
        });
        return JsonSerializer.SerializeToUtf8Bytes(new { id = repo.Id, sha = commit, siblings });
    }

    static Reply Content(byte[] bytes, IReadOnlyDictionary<string, string> headers, string etag, string? commit)
    {
        var h = new Dictionary<string, string> { ["ETag"] = $"\"{etag}\"", ["Accept-Ranges"] = "bytes" };
        if (commit is not null) h["X-Repo-Commit"] = commit;
        return new Reply(200, h, bytes, IsContent: true);
    }

    async Task WriteAsync(NetworkStream stream, HubRequest request, Reply reply, Fault? fault, CancellationToken ct)
    {
        if (fault is Fault.Status status)
            reply = Error(status.Code, message: "injected fault");

        var body = reply.Body;
        var statusCode = reply.Status;
        var headers = new Dictionary<string, string>(reply.Headers);
        if (reply.IsContent)
        {
            var range = request.Header("Range");
            if (range is not null && fault is not Fault.IgnoreRange && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-')
                && long.TryParse(range["bytes=".Length..^1], out var from))
            {
                if (from >= body.Length)
                {
                    statusCode = 416;
                    headers["Content-Range"] = $"bytes */{body.Length}";
                    body = Array.Empty<byte>();
                }
                else
                {
                    statusCode = 206;
                    headers["Content-Range"] = $"bytes {from}-{body.Length - 1}/{body.Length}";
                    body = body[(int)from..];
                }
            }
            if (fault is Fault.Corrupt && body.Length > 0)
            {
                body = (byte[])body.Clone();
                body[body.Length / 2] ^= 0x5A;
            }
            if (fault is Fault.Truncate truncate) body = body[..Math.Min(truncate.Bytes, body.Length)];
        }

        var text = new StringBuilder($"HTTP/1.1 {statusCode} {Reason(statusCode)}\r\n");
        foreach (var (k, v) in headers) text.Append($"{k}: {v}\r\n");
        text.Append($"Content-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text.ToString()), ct);
        if (request.Method == "HEAD") return;

        switch (fault)
        {
            case Fault.DropAfter drop:
                await stream.WriteAsync(body.AsMemory(0, Math.Min(drop.Bytes, body.Length)), ct);
                await stream.FlushAsync(ct);
                return;   // the connection closes with the body unfinished
            case Fault.StallAfter stall:
                await stream.WriteAsync(body.AsMemory(0, Math.Min(stall.Bytes, body.Length)), ct);
                await stream.FlushAsync(ct);
                await Task.Delay(Timeout.Infinite, ct);
                return;
            default:
                await stream.WriteAsync(body, ct);
                await stream.FlushAsync(ct);
                return;
        }
    }

    static string Reason(int status) => status switch
    {
        200 => "OK", 206 => "Partial Content", 302 => "Found", 401 => "Unauthorized", 403 => "Forbidden", 404 => "Not Found",
        416 => "Range Not Satisfiable", 429 => "Too Many Requests", 500 => "Internal Server Error", 503 => "Service Unavailable",
        _ => "Status",
    };

    int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _stop.Cancel();
        _listener.Stop();
        _cdnListener.Stop();
        try { Task.WaitAll(_handlers.Concat(_acceptLoops).ToArray(), TimeSpan.FromSeconds(5)); }
        catch (AggregateException) { }
        _stop.Dispose();
    }
}
