namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// Where and how <see cref="ModelLocator"/> reaches the Hugging Face Hub. Each setting left unset falls back to the
/// environment variable the Python <c>huggingface_hub</c> library reads, then to its default, so both share one cache.
/// </summary>
public sealed class HubOptions
{
    /// <summary>The public Hub.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>
    /// Base URL of the Hub or of a mirror. Unset: <c>HF_ENDPOINT</c>, else <see cref="DefaultEndpoint"/>.
    /// </summary>
    public string? Endpoint { get; set; }

    /// <summary>
    /// The Hub cache folder (the one holding <c>models--org--name</c> folders). Unset: <c>HF_HUB_CACHE</c>, else
    /// <c>$HF_HOME/hub</c>, else <c>$XDG_CACHE_HOME/huggingface/hub</c>, else <c>~/.cache/huggingface/hub</c>.
    /// </summary>
    public string? CacheDirectory { get; set; }

    /// <summary>
    /// When true, the network is never used: models come from the cache or resolution fails. Unset: true when
    /// <c>HF_HUB_OFFLINE</c> is <c>1</c>, <c>true</c>, <c>yes</c> or <c>on</c>.
    /// </summary>
    public bool? Offline { get; set; }

    /// <summary>
    /// Access token for private or gated repositories, sent as <c>Authorization: Bearer</c> to the Hub endpoint
    /// (never to the hosts it redirects to). Unset: <c>HF_TOKEN</c>. An empty string sends no token.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>Longest wait for a server to answer a request (connect and response headers). Default 30 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest silence tolerated while a file's bytes are arriving. Default 60 s.</summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How many times a request is repeated after a transient failure (429, 5xx, lost connection, timeout). Default 3;
    /// a download repeated after a lost connection resumes where it stopped.
    /// </summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>Wait before the first retry; it doubles for each further retry, up to 30 s. Default 1 s.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait for another process that is downloading the same file into the cache. Default 10 minutes.</summary>
    public TimeSpan LockTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Receives the bytes done of each file being downloaded. Reports arrive on the downloading thread.</summary>
    public IProgress<HubDownloadProgress>? Progress { get; set; }

    /// <summary>Reads environment variables; replaceable so tests do not depend on the process environment.</summary>
    internal Func<string, string?> GetEnvironmentVariable { get; set; } = System.Environment.GetEnvironmentVariable;

    /// <summary>Home folder used for the default cache; replaceable for tests.</summary>
    internal Func<string> GetHomeDirectory { get; set; } =
        () => System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);

    /// <summary>The endpoint in effect (<see cref="Endpoint"/>, <c>HF_ENDPOINT</c> or the default), without a trailing slash.</summary>
    public string ResolveEndpoint()
    {
        var endpoint = FirstSet(Endpoint, GetEnvironmentVariable("HF_ENDPOINT")) ?? DefaultEndpoint;
        endpoint = endpoint.Trim().TrimEnd('/');
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"The Hub endpoint '{endpoint}' is not an http(s) URL (set by HubOptions.Endpoint or HF_ENDPOINT).");
        return endpoint;
    }

    /// <summary>The cache folder in effect (see <see cref="CacheDirectory"/>), as a full path.</summary>
    public string ResolveCacheDirectory()
    {
        var folder = FirstSet(CacheDirectory, GetEnvironmentVariable("HF_HUB_CACHE"));
        if (folder is null)
        {
            var home = FirstSet(GetEnvironmentVariable("HF_HOME"));
            if (home is null)
            {
                var xdg = FirstSet(GetEnvironmentVariable("XDG_CACHE_HOME")) ?? Path.Combine(GetHomeDirectory(), ".cache");
                home = Path.Combine(xdg, "huggingface");
            }
            folder = Path.Combine(home, "hub");
        }
        return Path.GetFullPath(ExpandHome(folder));
    }

    /// <summary>Whether offline mode is in effect (<see cref="Offline"/>, else <c>HF_HUB_OFFLINE</c>).</summary>
    public bool ResolveOffline()
    {
        if (Offline is bool set) return set;
        var value = GetEnvironmentVariable("HF_HUB_OFFLINE")?.Trim();
        return value is not null && (value == "1" || value.Equals("true", StringComparison.OrdinalIgnoreCase)
            || value.Equals("yes", StringComparison.OrdinalIgnoreCase) || value.Equals("on", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The token in effect (<see cref="Token"/>, else <c>HF_TOKEN</c>), or null for none.</summary>
    public string? ResolveToken()
    {
        var token = Token ?? GetEnvironmentVariable("HF_TOKEN");
        return string.IsNullOrWhiteSpace(token) ? null : token.Trim();
    }

    static string? FirstSet(params string?[] values) => values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));

    string ExpandHome(string path) =>
        path == "~" ? GetHomeDirectory()
        : path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~\\", StringComparison.Ordinal) ? Path.Combine(GetHomeDirectory(), path[2..])
        : path;
}
