using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// A saved model's tokenizer is read from its entries in memory: the same files give the same tokenizer whether they
/// lie in a folder or in memory, and a damaged one is reported under the name it has in the model file.
/// </summary>
public class InMemoryTokenizerFilesTests
{
    static Dictionary<string, byte[]> FilesOf(string folder, params string[] names) =>
        names.ToDictionary(n => n, n => File.ReadAllBytes(Path.Combine(folder, n)), StringComparer.Ordinal);

    [Theory]
    [InlineData("vocab.txt")]
    [InlineData("tokenizer.json")]
    public void The_real_bert_tokenizer_encodes_alike_from_a_folder_and_from_memory(string file)
    {
        var config = TransformerConfig.Load(SharedData.Config("bert-base-uncased.json"));
        using var dir = new TempDir();
        File.Copy(Path.Combine(SharedData.BertTokenizer, file), dir.File(file));
        var fromFolder = TextEncoders.FromFolder(dir.Path, config, maxLength: 64);
        var fromMemory = TextEncoders.FromFiles(FilesOf(dir.Path, file), "tokenizer", config, maxLength: 64);

        foreach (var text in new[] { "Hello, world! Naïve café-goers don't tokenize 12,345 things.", "", "ünïcödé and CJK 漢字" })
            fromMemory.Encode(text, "a second sentence").InputIds.Should().Equal(fromFolder.Encode(text, "a second sentence").InputIds, text);
    }

    [Fact]
    public void A_sentencepiece_model_in_memory_encodes_as_from_its_folder()
    {
        using var dir = new TempDir();
        ToyLlamaTokenizer.WriteTokenizerModel(dir.Path);
        var config = ToyLlamaTokenizer.Config(padTokenId: 0);
        var fromFolder = TextEncoders.FromFolder(dir.Path, config, maxLength: 32);
        var fromMemory = TextEncoders.FromFiles(FilesOf(dir.Path, "tokenizer.model"), "tokenizer", config, maxLength: 32);

        fromMemory.Encode("Hello world").InputIds.Should().Equal(fromFolder.Encode("Hello world").InputIds);
    }

    [Fact]
    public void A_damaged_file_in_memory_is_named_as_the_model_file_names_it()
    {
        var config = TransformerConfig.Load(SharedData.Config("bert-base-uncased.json"));
        var files = new Dictionary<string, byte[]> { ["tokenizer.json"] = "{ not json"u8.ToArray() };

        var load = () => TextEncoders.FromFiles(files, "tokenizer", config);

        load.Should().Throw<CheckpointFormatException>().WithMessage("*tokenizer/tokenizer.json*");
    }
}
