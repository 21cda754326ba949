using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// A Hugging Face Hub model id, <c>name</c> or <c>org/name</c>, with an optional revision after <c>@</c>
/// (a branch, tag or commit sha; <c>main</c> when absent), e.g. <c>google/bert_uncased_L-2_H-128_A-2@main</c>.
/// </summary>
public sealed partial record HubModelId
{
    /// <summary>The revision used when the id names none.</summary>
    public const string DefaultRevision = "main";

    HubModelId(string repoId, string revision)
    {
        RepoId = repoId;
        Revision = revision;
    }

    /// <summary>The repository, <c>name</c> or <c>org/name</c>.</summary>
    public string RepoId { get; }

    /// <summary>The branch, tag or commit sha.</summary>
    public string Revision { get; }

    /// <summary>True when <see cref="Revision"/> is a full commit sha (40 lower-case hex digits).</summary>
    public bool RevisionIsCommit => IsCommitSha(Revision);

    /// <summary>The repository's folder in the Hub cache: <c>models--org--name</c>.</summary>
    public string CacheFolderName => "models--" + RepoId.Replace("/", "--", StringComparison.Ordinal);

    /// <summary><c>org/name</c>, followed by <c>@revision</c> unless the revision is <c>main</c>.</summary>
    public override string ToString() => Revision == DefaultRevision ? RepoId : $"{RepoId}@{Revision}";

    /// <summary>Parses an id; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static HubModelId Parse(string text) =>
        TryParse(text, out var id, out var error) ? id : throw new FormatException($"'{text}' is not a Hugging Face Hub model id: {error}.");

    /// <summary>Parses an id, or returns false.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out HubModelId? id) => TryParse(text, out id, out _);

    /// <summary>Parses an id, or returns false with the reason.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out HubModelId? id, [NotNullWhen(false)] out string? error)
    {
        id = null;
        if (string.IsNullOrWhiteSpace(text)) { error = "it is empty"; return false; }
        var at = text.IndexOf('@');
        var repo = at < 0 ? text : text[..at];
        var revision = at < 0 ? DefaultRevision : text[(at + 1)..];
        error = RepoIdProblem(repo) ?? RevisionProblem(revision);
        if (error is not null) return false;
        id = new HubModelId(repo, revision);
        return true;
    }

    /// <summary>True for a full commit sha (40 lower-case hex digits).</summary>
    public static bool IsCommitSha(string? text) => text is not null && CommitSha().IsMatch(text);

    static string? RepoIdProblem(string repo)
    {
        var parts = repo.Split('/');
        if (parts.Length > 2) return "it has more than one '/' (expected 'name' or 'org/name')";
        foreach (var part in parts)
        {
            if (part.Length == 0) return "the organisation or the name is empty";
            if (part.Length > 96) return $"'{part}' is longer than 96 characters";
            if (!NamePart().IsMatch(part))
                return $"'{part}' may hold only letters, digits, '-', '_' and '.', and must start and end with a letter, digit or '_'";
            if (part.Contains("--", StringComparison.Ordinal) || part.Contains("..", StringComparison.Ordinal))
                return $"'{part}' contains '--' or '..'";
        }
        if (repo.EndsWith(".git", StringComparison.OrdinalIgnoreCase)) return "it ends with '.git'";
        return null;
    }

    static string? RevisionProblem(string revision)
    {
        if (revision.Length == 0) return "the revision after '@' is empty";
        if (revision.Length > 255) return "the revision is longer than 255 characters";
        foreach (var c in revision)
            if (char.IsWhiteSpace(c) || char.IsControl(c) || "\\~^:?*[@".Contains(c))
                return $"the revision '{revision}' contains '{c}'";
        foreach (var segment in revision.Split('/'))
            if (segment.Length == 0 || segment == "." || segment == ".." || segment.StartsWith('.'))
                return $"the revision '{revision}' has an empty segment or one starting with '.'";
        return null;
    }

    [GeneratedRegex("^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")]
    private static partial Regex NamePart();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitSha();
}
