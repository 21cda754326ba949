namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// A model could not be obtained from the Hugging Face Hub or its cache. The message says which repository, file
/// and URL were involved and what to do.
/// </summary>
public sealed class HubException : IOException
{
    /// <summary>Creates the exception.</summary>
    public HubException(string message, Uri? url = null, int? statusCode = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Url = url;
        StatusCode = statusCode;
    }

    /// <summary>The URL of the failed request, when there was one.</summary>
    public Uri? Url { get; }

    /// <summary>The HTTP status of the failed request, when a server answered.</summary>
    public int? StatusCode { get; }

    /// <summary>
    /// True when the Hub could not be reached or kept failing with 429/5xx, as opposed to answering that the model,
    /// revision or file is missing or forbidden.
    /// </summary>
    public bool IsUnavailable { get; init; }
}
