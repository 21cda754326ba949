namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>Locates ../shared (beside the repository) and the repository root.</summary>
public static class SharedData
{
    static readonly Lazy<string> RepoRootLazy = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Microsoft.ML.LoRA.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Microsoft.ML.LoRA.sln)");
    });

    /// <summary>The repository root.</summary>
    public static string RepoRoot => RepoRootLazy.Value;

    /// <summary>../shared, or $LORA_SHARED.</summary>
    public static string Root
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("LORA_SHARED");
            var path = !string.IsNullOrEmpty(env) ? env : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"shared data not found at {path}; set LORA_SHARED");
            return path;
        }
    }

    public static string Fixture(string family) => Path.Combine(Root, "fixtures", family);
    public static string Config(string name) => Path.Combine(Root, "configs", name);
    public static string Data(params string[] parts) => Path.Combine(new[] { Root, "data" }.Concat(parts).ToArray());
    public static string BertTokenizer => Path.Combine(Root, "tokenizers", "bert-base-uncased");
    /// <summary>The small genuinely pre-trained BERT (masked-LM checkpoint: no pooler, no classifier).</summary>
    public static string PretrainedBert => Path.Combine(Root, "models", "bert-tiny-mlm-en");

    public static readonly string[] Families = { "bert", "distilbert", "roberta", "gpt2" };
}
