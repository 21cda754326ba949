using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// RoBERTa and GPT-2 tokenization on a tiny byte-level BPE vocabulary written by the test (no GPT-2/RoBERTa vocab files
/// exist on this machine). Expected tokens are written out by hand from GPT-2's byte alphabet and the merge rules.
/// </summary>
public class ByteLevelBpeTextEncoderTests
{
    static readonly TransformerConfig RobertaConfig = TransformerConfig.Load(SharedData.Config("roberta-base.json"));
    // The toy vocabulary's end-of-text id is not GPT-2's 50256, so the config must not name one unless a test says so.
    static readonly TransformerConfig Gpt2Config = TransformerConfig.Load(SharedData.Config("gpt2.json")) with { EosTokenId = null, BosTokenId = null };

    static readonly ToyByteLevelBpe Roberta = ToyByteLevelBpe.Roberta();
    static readonly ToyByteLevelBpe Gpt2 = ToyByteLevelBpe.Gpt2();

    static ITextEncoder Load(ToyByteLevelBpe toy, TransformerConfig config, TempDir dir, int? maxLength = null, bool versionHeader = true)
    {
        toy.WriteVocabFiles(dir.Path, versionHeader);
        return TextEncoders.FromFolder(dir.Path, config, maxLength);
    }

    [Fact]
    public void The_byte_alphabet_is_gpt2s()
    {
        ByteSymbols.Of(" ").Should().Be("Ġ");
        ByteSymbols.Of("\n").Should().Be("Ċ");
        ByteSymbols.Of("é").Should().Be("Ã©");
        ByteSymbols.Of("😀").Should().Be("ðŁĺĢ");
    }

    [Fact]
    public void Roberta_wraps_a_text_in_s_and_slash_s_and_merges_by_rank()
    {
        using var dir = new TempDir();
        var encoder = Load(Roberta, RobertaConfig, dir);

        var encoded = encoder.Encode("the the");

        encoded.InputIds.Should().Equal(Roberta.Ids("<s>", "t", "he", "Ġthe", "</s>"));
        encoded.InputIds.Should().Equal(0, Roberta.Id("t"), Roberta.Id("he"), Roberta.Id("Ġthe"), 2);
        encoded.TokenTypeIds.Should().Equal(0, 0, 0, 0, 0);
        encoder.Should().BeOfType<ByteLevelBpeTextEncoder>().Which.AddPrefixSpace.Should().BeFalse();
    }

    [Fact]
    public void Roberta_pairs_are_s_a_double_sep_b_sep_with_all_token_types_zero()
    {
        using var dir = new TempDir();
        var encoder = Load(Roberta, RobertaConfig, dir);

        var encoded = encoder.Encode("the", "é");

        encoded.InputIds.Should().Equal(Roberta.Ids("<s>", "t", "he", "</s>", "</s>", "Ã©", "</s>"));
        encoded.TokenTypeIds.Should().OnlyContain(t => t == 0).And.HaveCount(7);
    }

    [Fact]
    public void Roberta_pads_with_its_pad_token_and_empty_text_gives_s_slash_s()
    {
        using var dir = new TempDir();
        var encoder = Load(Roberta, RobertaConfig, dir);

        encoder.PadTokenId.Should().Be(1);
        encoder.MaxLength.Should().Be(512, "roberta-base has 514 positions, two of them before the first token");
        encoder.Encode(null).InputIds.Should().Equal(0, 2);
        encoder.Encode("").InputIds.Should().Equal(0, 2);
    }

    [Fact]
    public void Gpt2_adds_no_special_tokens_and_word_boundaries_carry_the_space()
    {
        using var dir = new TempDir();
        var encoder = Load(Gpt2, Gpt2Config, dir, versionHeader: false);

        encoder.Encode("the the").InputIds.Should().Equal(Gpt2.Ids("t", "he", "Ġthe"));
        encoder.Encode(" the").InputIds.Should().Equal(Gpt2.Ids("Ġthe"));
        encoder.Encode("Hello").InputIds.Should().Equal(Gpt2.Ids("H", "e", "l", "l", "o"));
        encoder.Encode("a  the").InputIds.Should().Equal(Gpt2.Ids("a", "Ġ", "Ġthe"));
        encoder.Encode("a\nthe").InputIds.Should().Equal(Gpt2.Ids("a", "Ċ", "t", "he"));
    }

    [Fact]
    public void Non_ascii_text_round_trips_through_utf8_byte_symbols()
    {
        using var dir = new TempDir();
        var encoder = Load(Gpt2, Gpt2Config, dir);

        encoder.Encode("é").InputIds.Should().Equal(Gpt2.Ids("Ã©"));
        encoder.Encode("the é 😀").InputIds.Should().Equal(Gpt2.Ids("t", "he", "ĠÃ©", "Ġ", "ð", "Ł", "ĺ", "Ģ"));
        encoder.Encode("日").InputIds.Should().Equal(Gpt2.Ids("æ", "Ĺ", "¥"));
    }

    [Fact]
    public void Gpt2_pairs_are_concatenated_with_the_second_text_as_segment_one()
    {
        using var dir = new TempDir();
        var encoder = Load(Gpt2, Gpt2Config, dir);

        var encoded = encoder.Encode("the", " the");

        encoded.InputIds.Should().Equal(Gpt2.Ids("t", "he", "Ġthe"));
        encoded.TokenTypeIds.Should().Equal(0, 0, 1);
    }

    [Fact]
    public void Gpt2_empty_text_is_the_single_end_of_text_token_which_also_pads()
    {
        using var dir = new TempDir();
        var encoder = Load(Gpt2, Gpt2Config, dir);
        int eos = Gpt2.Id("<|endoftext|>");

        encoder.Encode(null).InputIds.Should().Equal(eos);
        encoder.Encode("").InputIds.Should().Equal(eos);
        encoder.Encode("", "").InputIds.Should().Equal(eos);
        encoder.Encode("", "").TokenTypeIds.Should().Equal(0);
        encoder.PadTokenId.Should().Be(eos);
        encoder.MaxLength.Should().Be(1024);
    }

    [Fact]
    public void Gpt2_pad_id_is_the_config_pad_then_the_config_eos()
    {
        using var dir = new TempDir();
        Gpt2.WriteVocabFiles(dir.Path);

        var withEos = TextEncoders.FromFolder(dir.Path, Gpt2Config with { EosTokenId = 7 });
        var withPad = TextEncoders.FromFolder(dir.Path, Gpt2Config with { EosTokenId = 7, PadTokenId = 5 });

        withEos.PadTokenId.Should().Be(7);
        withEos.Encode("").InputIds.Should().Equal(7);
        withPad.PadTokenId.Should().Be(5);
        withPad.Encode("").InputIds.Should().Equal(7);
    }

    [Fact]
    public void Special_tokens_in_the_text_are_matched_and_roberta_mask_swallows_the_space_before_it()
    {
        using var robertaDir = new TempDir();
        using var gpt2Dir = new TempDir();
        var roberta = Load(Roberta, RobertaConfig, robertaDir);
        var gpt2 = Load(Gpt2, Gpt2Config, gpt2Dir);

        gpt2.Encode("the<|endoftext|>the").InputIds.Should().Equal(Gpt2.Ids("t", "he", "<|endoftext|>", "t", "he"));
        roberta.Encode("the <mask> the").InputIds.Should().Equal(Roberta.Ids("<s>", "t", "he", "<mask>", "Ġthe", "</s>"));
        roberta.Encode("a</s>").InputIds.Should().Equal(Roberta.Ids("<s>", "a", "</s>", "</s>"));
    }

    [Fact]
    public void Add_prefix_space_from_tokenizer_config_puts_a_space_before_each_text()
    {
        using var dir = new TempDir();
        Roberta.WriteVocabFiles(dir.Path);
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"add_prefix_space": true, "model_max_length": 512}""");

        var encoder = TextEncoders.FromFolder(dir.Path, RobertaConfig);

        ((ByteLevelBpeTextEncoder)encoder).AddPrefixSpace.Should().BeTrue();
        encoder.Encode("the", "the").InputIds.Should().Equal(Roberta.Ids("<s>", "Ġthe", "</s>", "</s>", "Ġthe", "</s>"));
        encoder.Encode(" the").InputIds.Should().Equal(Roberta.Ids("<s>", "Ġthe", "</s>"));
    }

    public static IEnumerable<object[]> TokenizerJsonVariants =>
        from family in new[] { "roberta", "gpt2" } from pairs in new[] { false, true } select new object[] { family, pairs };

    [Theory]
    [MemberData(nameof(TokenizerJsonVariants))]
    public void Tokenizer_json_gives_the_same_ids_as_vocab_json_and_merges_txt(string family, bool mergesAsPairs)
    {
        var toy = family == "roberta" ? Roberta : Gpt2;
        var config = family == "roberta" ? RobertaConfig : Gpt2Config;
        using var files = new TempDir();
        using var json = new TempDir();
        toy.WriteVocabFiles(files.Path);
        toy.WriteTokenizerJson(json.Path, mergesAsPairs);
        var fromFiles = TextEncoders.FromFolder(files.Path, config);
        var fromJson = TextEncoders.FromFolder(json.Path, config);
        ((ByteLevelBpeTextEncoder)fromJson).Source.Should().EndWith("tokenizer.json");
        string[] texts = ["the the", "Hello, world!", "é 😀 日本", "  spaced\n\nout  ", "it's the <mask> <s>", "the<|endoftext|>the", ""];

        foreach (var text in texts)
        {
            fromJson.Encode(text).Should().BeEquivalentTo(fromFiles.Encode(text), "text: {0}", text);
            fromJson.Encode(text, "the é").Should().BeEquivalentTo(fromFiles.Encode(text, "the é"), "pair with: {0}", text);
        }
        fromJson.PadTokenId.Should().Be(fromFiles.PadTokenId);
    }

    [Fact]
    public void Tokenizer_json_add_prefix_space_is_honoured()
    {
        using var dir = new TempDir();
        Gpt2.WriteTokenizerJson(dir.Path, mergesAsPairs: false, addPrefixSpace: true);

        TextEncoders.FromFolder(dir.Path, Gpt2Config).Encode("the").InputIds.Should().Equal(Gpt2.Ids("Ġthe"));
    }

    [Fact]
    public void Long_text_is_truncated_keeping_the_end_token()
    {
        using var robertaDir = new TempDir();
        using var gpt2Dir = new TempDir();
        var roberta = Load(Roberta, RobertaConfig, robertaDir, maxLength: 5);
        var gpt2 = Load(Gpt2, Gpt2Config, gpt2Dir, maxLength: 3);

        roberta.Encode("the the the the").InputIds.Should().Equal(Roberta.Ids("<s>", "t", "he", "Ġthe", "</s>"));
        gpt2.Encode("the the the the").InputIds.Should().Equal(Gpt2.Ids("t", "he", "Ġthe"));
        // budget 7 - 4 = 3: "the the" has 3 tokens, "é é" 2; the longer keeps 2, the shorter 1.
        var pairEncoder = TextEncoders.FromFolder(robertaDir.Path, RobertaConfig, maxLength: 7);
        pairEncoder.Encode("the the", "é é").InputIds.Should().Equal(Roberta.Ids("<s>", "t", "he", "</s>", "</s>", "Ã©", "</s>"));
    }

    [Fact]
    public void Merges_naming_tokens_missing_from_the_vocabulary_are_reported_with_the_file()
    {
        using var dir = new TempDir();
        Gpt2.WriteVocabFiles(dir.Path);
        File.AppendAllText(dir.File("merges.txt"), "x yz\n");

        var act = () => TextEncoders.FromFolder(dir.Path, Gpt2Config);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("vocab.json").And.Contain("merges");
    }

    [Fact]
    public void Vocab_json_without_merges_txt_names_the_missing_file()
    {
        using var dir = new TempDir();
        Gpt2.WriteVocabFiles(dir.Path);
        File.Delete(dir.File("merges.txt"));

        var act = () => TextEncoders.FromFolder(dir.Path, Gpt2Config);

        act.Should().Throw<FileNotFoundException>().Which.Message.Should().Contain("merges.txt");
    }

    [Fact]
    public void Encoding_from_several_threads_gives_the_same_ids_as_one_thread()
    {
        using var dir = new TempDir();
        var encoder = Load(Roberta, RobertaConfig, dir);
        var texts = File.ReadLines(SharedData.Data("sst2", "dev.tsv")).Skip(1).Select(l => l.Split('\t')[1] + " thé 😀").ToArray();
        var sequential = texts.Select(t => encoder.Encode(t).InputIds).ToArray();

        var parallel = new int[texts.Length][];
        Parallel.For(0, texts.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => parallel[i] = encoder.Encode(texts[i]).InputIds);

        for (int i = 0; i < texts.Length; i++) parallel[i].Should().Equal(sequential[i]);
    }
}
