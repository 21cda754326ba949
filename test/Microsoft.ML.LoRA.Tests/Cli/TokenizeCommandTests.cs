using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// <c>lora tokenize</c> prints the ids a model folder's tokenizer gives each text of a JSON array, special tokens
/// included, as Hugging Face's <c>tokenizer(text)["input_ids"]</c> would: the library's own encoder's ids, and for the
/// SentencePiece fixture the ids SentencePiece gives.
/// </summary>
public class TokenizeCommandTests
{
    static int[][] Parse(string stdout) => JsonSerializer.Deserialize<int[][]>(stdout)!;

    static string TextsFile(TempDir dir, params string[] texts)
    {
        var path = dir.File("texts.json");
        File.WriteAllText(path, JsonSerializer.Serialize(texts));
        return path;
    }

    [Fact]
    public void Each_text_gets_the_ids_of_the_folders_tokenizer_with_its_special_tokens()
    {
        using var dir = new TempDir();
        string[] texts = { "hello world", "Ünïcödé, émoji 😀 and\ttabs", "" };

        var result = CliRun.Lora("tokenize", "--model", SharedData.PretrainedBert, "--texts", TextsFile(dir, texts));

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        var ids = Parse(result.Stdout);
        ids[0].Should().Equal(101, 7592, 2088, 102);   // [CLS] hello world [SEP] in bert-base-uncased's vocabulary
        var encoder = TextEncoders.FromFolder(SharedData.PretrainedBert, TransformerConfig.Load(Path.Combine(SharedData.PretrainedBert, "config.json")));
        for (int i = 0; i < texts.Length; i++) ids[i].Should().Equal(encoder.Encode(texts[i]).InputIds.ToArray());
    }

    [Fact]
    public void A_folder_with_a_SentencePiece_model_and_no_weights_gives_SentencePiece_s_ids()
    {
        using var dir = new TempDir();
        var folder = Path.Combine(SharedData.RepoRoot, "test", "Microsoft.ML.LoRA.Tests", "Fixtures", "sentencepiece", "llama");
        var cases = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "cases.json")))!;
        var hard = cases["texts"]!.AsArray().TakeWhile(t => t is JsonValue).Select(t => t!.GetValue<string>()).ToArray();
        var expected = cases["input_ids"]!.AsArray().Take(hard.Length).Select(r => r!.AsArray().Select(i => i!.GetValue<int>()).ToArray()).ToList();

        var result = CliRun.Lora("tokenize", "--model", folder, "--texts", TextsFile(dir, hard));

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        hard.Should().HaveCountGreaterThan(10);
        var ids = Parse(result.Stdout);
        ids.Should().HaveCount(hard.Length);
        for (int i = 0; i < hard.Length; i++) ids[i].Should().Equal(expected[i], "text {0} ({1})", i, hard[i]);
    }

    [Fact]
    public void Max_length_truncates_and_keeps_the_special_tokens()
    {
        using var dir = new TempDir();

        var result = CliRun.Lora("tokenize", "--model", SharedData.PretrainedBert, "--texts", TextsFile(dir, "hello world again"), "--max-length", "3");

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        Parse(result.Stdout)[0].Should().Equal(101, 7592, 102);
    }

    [Fact]
    public void A_texts_file_that_is_not_an_array_of_strings_is_refused_with_its_name()
    {
        using var dir = new TempDir();
        var path = dir.File("texts.json");
        File.WriteAllText(path, """{"text": "hello"}""");

        var result = CliRun.Lora("tokenize", "--model", SharedData.PretrainedBert, "--texts", path);

        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Stderr.Should().Contain("texts.json").And.Contain("array of strings");
        result.Stdout.Should().BeEmpty();
    }
}
