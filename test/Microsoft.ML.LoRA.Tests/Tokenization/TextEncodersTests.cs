using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>The factory: default and allowed lengths per family, missing files, the file name list.</summary>
public class TextEncodersTests
{
    static TransformerConfig Config(string name) => TransformerConfig.Load(SharedData.Config(name));

    [Fact]
    public void Model_max_length_is_the_usable_positions_of_each_family()
    {
        TextEncoders.ModelMaxLength(Config("bert-base-uncased.json")).Should().Be(512);
        TextEncoders.ModelMaxLength(Config("distilbert-base-uncased.json")).Should().Be(512);
        TextEncoders.ModelMaxLength(Config("roberta-base.json")).Should().Be(512);
        TextEncoders.ModelMaxLength(Config("gpt2.json")).Should().Be(1024);
        TextEncoders.ModelMaxLength(Config("bert-tiny.json")).Should().Be(Config("bert-tiny.json").MaxPositions);
    }

    [Fact]
    public void A_max_length_above_the_model_limit_is_rejected_naming_the_limit()
    {
        var act = () => TextEncoders.FromFolder(SharedData.BertTokenizer, Config("bert-base-uncased.json"), maxLength: 513);

        act.Should().Throw<ArgumentOutOfRangeException>().Which.Message.Should().Contain("512").And.Contain("max_position_embeddings");
    }

    [Fact]
    public void A_max_length_too_small_for_the_special_tokens_is_rejected()
    {
        var bert = Config("bert-base-uncased.json");

        FluentActions.Invoking(() => TextEncoders.FromFolder(SharedData.BertTokenizer, bert, maxLength: 1))
            .Should().Throw<ArgumentOutOfRangeException>().Which.Message.Should().Contain("512");
        FluentActions.Invoking(() => TextEncoders.FromFolder(SharedData.BertTokenizer, bert, maxLength: 0))
            .Should().Throw<ArgumentOutOfRangeException>();
        TextEncoders.FromFolder(SharedData.BertTokenizer, bert, maxLength: 2).Encode("hello world").InputIds.Should().Equal(101, 102);
        TextEncoders.FromFolder(SharedData.BertTokenizer, bert, maxLength: 512).MaxLength.Should().Be(512);
    }

    [Fact]
    public void Gpt2_and_roberta_limits_are_checked_against_their_own_positions()
    {
        using var gpt2 = new TempDir();
        using var roberta = new TempDir();
        ToyByteLevelBpe.Gpt2().WriteVocabFiles(gpt2.Path);
        ToyByteLevelBpe.Roberta().WriteVocabFiles(roberta.Path);
        var gpt2Config = Config("gpt2.json") with { EosTokenId = null };

        TextEncoders.FromFolder(gpt2.Path, gpt2Config, maxLength: 1).Encode("the the").Length.Should().Be(1);
        FluentActions.Invoking(() => TextEncoders.FromFolder(gpt2.Path, gpt2Config, maxLength: 0)).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => TextEncoders.FromFolder(gpt2.Path, gpt2Config, maxLength: 1025))
            .Should().Throw<ArgumentOutOfRangeException>().Which.Message.Should().Contain("1024");
        FluentActions.Invoking(() => TextEncoders.FromFolder(roberta.Path, Config("roberta-base.json"), maxLength: 513))
            .Should().Throw<ArgumentOutOfRangeException>().Which.Message.Should().Contain("512").And.Contain("514");
    }

    [Fact]
    public void A_pair_that_cannot_fit_its_special_tokens_is_an_error()
    {
        var encoder = TextEncoders.FromFolder(SharedData.BertTokenizer, Config("bert-base-uncased.json"), maxLength: 2);

        FluentActions.Invoking(() => encoder.Encode("a", "b")).Should().Throw<InvalidOperationException>().Which.Message.Should().Contain("3 special tokens");
    }

    [Theory]
    [InlineData("bert-base-uncased.json", new[] { "tokenizer.json", "vocab.txt" })]
    [InlineData("roberta-base.json", new[] { "tokenizer.json", "vocab.json", "merges.txt" })]
    [InlineData("gpt2.json", new[] { "tokenizer.json", "vocab.json", "merges.txt" })]
    [InlineData("llama", new[] { "tokenizer.json", "tokenizer.model", "spm.model" })]
    public void A_folder_without_tokenizer_files_names_the_files_looked_for(string configName, string[] names)
    {
        using var empty = new TempDir();
        var config = configName == "llama" ? ToyLlamaTokenizer.Config() : Config(configName);

        var act = () => TextEncoders.FromFolder(empty.Path, config);

        var message = act.Should().Throw<FileNotFoundException>().Which.Message;
        message.Should().Contain(empty.Path);
        foreach (var name in names) message.Should().Contain(name);
    }

    [Fact]
    public void A_missing_folder_is_reported()
    {
        var act = () => TextEncoders.FromFolder("/nonexistent/tokenizer-folder", Config("bert-base-uncased.json"));

        act.Should().Throw<DirectoryNotFoundException>().Which.Message.Should().Contain("/nonexistent/tokenizer-folder");
    }

    [Fact]
    public void A_tokenizer_json_of_the_wrong_kind_is_reported_with_the_field()
    {
        using var dir = new TempDir();
        ToyByteLevelBpe.Gpt2().WriteTokenizerJson(dir.Path, mergesAsPairs: false);

        var act = () => TextEncoders.FromFolder(dir.Path, Config("bert-base-uncased.json"));

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("tokenizer.json").And.Contain("model.type").And.Contain("BPE");
    }

    [Fact]
    public void Ids_beyond_the_model_vocabulary_are_reported()
    {
        var tiny = Config("bert-base-uncased.json") with { VocabSize = 1000 };
        var encoder = TextEncoders.FromFolder(SharedData.BertTokenizer, tiny);

        encoder.Encode("!").InputIds.Should().Equal(101, 999, 102);
        FluentActions.Invoking(() => encoder.Encode("hello")).Should().Throw<InvalidOperationException>().Which.Message.Should().Contain("vocab_size");
    }

    [Fact]
    public void Tokenizer_file_names_list_every_file_a_tokenizer_may_need()
    {
        TextEncoders.TokenizerFileNames.Should().BeEquivalentTo(
            "vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
            "tokenizer.model", "spm.model");
    }

    [Fact]
    public void Only_bert_takes_token_type_ids()
    {
        TextEncoders.TakesTokenTypeIds(Config("bert-base-uncased.json")).Should().BeTrue();
        TextEncoders.TakesTokenTypeIds(Config("distilbert-base-uncased.json")).Should().BeFalse();
        TextEncoders.TakesTokenTypeIds(Config("roberta-base.json")).Should().BeFalse();
        TextEncoders.TakesTokenTypeIds(Config("gpt2.json")).Should().BeFalse();
    }
}
