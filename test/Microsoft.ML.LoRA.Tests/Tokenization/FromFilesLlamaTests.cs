using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// Llama-2 / Mistral / TinyLlama tokenization (<see cref="TokenizerKind.FromFiles"/>) on <see cref="ToyLlamaTokenizer"/>:
/// tokenizer.json's BPE with byte fallback, and tokenizer.model with the merges derived from its piece scores, which must agree.
/// Expected ids are derived by hand from Hugging Face's BPE: the lowest-ranked adjacent pair merges first.
/// </summary>
public class FromFilesLlamaTests
{
    static readonly TransformerConfig Config = ToyLlamaTokenizer.Config();

    static int[] Ids(params string[] tokens) => ToyLlamaTokenizer.Ids(tokens);

    static ITextEncoder Json(TempDir dir, bool legacy = true, int? maxLength = null, TransformerConfig? config = null)
    {
        ToyLlamaTokenizer.WriteTokenizerJson(dir.Path, legacy);
        return TextEncoders.FromFolder(dir.Path, config ?? Config, maxLength);
    }

    static ITextEncoder Model(TempDir dir, int? maxLength = null)
    {
        ToyLlamaTokenizer.WriteTokenizerModel(dir.Path);
        return TextEncoders.FromFolder(dir.Path, Config, maxLength);
    }

    [Fact]
    public void A_text_gets_bos_and_merges_by_rank()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);

        // "hello world" -> normalizer: Prepend ▁, spaces -> ▁: "▁hello▁world", one BPE word.
        // Symbols ▁ h e l l o ▁ w o r l d. Ranks: l+l 0, ▁+h 1, e+ll 2, ▁h+ell 3, ▁hell+o 4, o+r 5, ▁+w 6, ▁w+or 7, l+d 8.
        // ll(0) -> ▁h(1) -> ell(2) -> ▁hell(3) -> ▁hello(4) -> or(5) -> ▁w(6) -> ▁wor(7) -> ld(8):
        // ▁hello ▁wor ld = 263 266 267, after <s> = 1.
        var encoded = encoder.Encode("hello world");

        encoded.InputIds.Should().Equal(1, 263, 266, 267);
        encoded.InputIds.Should().Equal(Ids("<s>", "▁hello", "▁wor", "ld"));
        encoded.TokenTypeIds.Should().Equal(0, 0, 0, 0);
        encoder.Should().BeOfType<FromFilesTextEncoder>().Which.Format.Should().Be("tokenizer.json BPE");
    }

    [Fact]
    public void A_pair_is_bos_a_bos_b_with_the_second_half_type_one()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);

        // Template "<s>:0 $A:0 <s>:1 $B:1": each text gets its own ▁ (normalized separately).
        var encoded = encoder.Encode("hello", "world");

        encoded.InputIds.Should().Equal(Ids("<s>", "▁hello", "<s>", "▁wor", "ld"));
        encoded.TokenTypeIds.Should().Equal(0, 0, 1, 1, 1);
    }

    [Fact]
    public void An_unknown_character_falls_back_to_its_utf8_bytes()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);

        // "€" -> "▁€"; € is not in the vocabulary, so its UTF-8 bytes E2 82 AC become <0xE2><0x82><0xAC> = 3 + byte.
        encoder.Encode("€").InputIds.Should().Equal(1, Ids("▁")[0], 3 + 0xE2, 3 + 0x82, 3 + 0xAC);
        encoder.Encode("€").InputIds.Should().Equal(Ids("<s>", "▁", "<0xE2>", "<0x82>", "<0xAC>"));
        // "héllo" -> ▁ h <0xC3> <0xA9> l l o; l+l (rank 0) then ▁+h (1); nothing merges across the byte tokens.
        encoder.Encode("héllo").InputIds.Should().Equal(Ids("<s>", "▁h", "<0xC3>", "<0xA9>", "ll", "o"));
    }

    [Fact]
    public void Added_tokens_stay_whole_and_legacy_prefixes_the_text_after_them()
    {
        using var legacyDir = new TempDir();
        using var metaspaceDir = new TempDir();
        var legacy = Json(legacyDir, legacy: true);
        var metaspace = Json(metaspaceDir, legacy: false);

        // "hello</s>world": </s> is an added token, matched before normalization; the text on each side is normalized
        // alone. Legacy's Prepend gives "world" a ▁ too (▁wor ld); Metaspace's "first" scheme prepends only at the
        // start of the text, so "world" stays w o r l d: o+r (5) -> l+d (8) -> w or ld.
        legacy.Encode("hello</s>world").InputIds.Should().Equal(Ids("<s>", "▁hello", "</s>", "▁wor", "ld"));
        metaspace.Encode("hello</s>world").InputIds.Should().Equal(Ids("<s>", "▁hello", "</s>", "w", "or", "ld"));
        metaspace.Encode("hello world").InputIds.Should().Equal(legacy.Encode("hello world").InputIds);
    }

    [Fact]
    public void Truncation_keeps_bos_and_cuts_the_longest_text_first()
    {
        using var dir = new TempDir();
        var encoder = Json(dir, maxLength: 3);
        var pairs = TextEncoders.FromFolder(dir.Path, Config, maxLength: 5);

        encoder.Encode("hello world hello world").InputIds.Should().Equal(Ids("<s>", "▁hello", "▁wor"));
        // Budget 5 - 2 (two <s>) = 3; both texts have 3 tokens, so each keeps half and the second the odd one.
        var pair = pairs.Encode("hello world", "hello world");
        pair.InputIds.Should().Equal(Ids("<s>", "▁hello", "<s>", "▁hello", "▁wor"));
        pair.TokenTypeIds.Should().Equal(0, 0, 1, 1, 1);
    }

    [Fact]
    public void Without_a_pad_token_batches_are_padded_with_the_end_of_sequence_token()
    {
        using var dir = new TempDir();
        var encoder = (FromFilesTextEncoder)Json(dir);

        encoder.PadTokenId.Should().Be(2, "Llama-2 names no pad token: </s> pads, as pad_token = eos_token does");
        encoder.PadTokenIsEndOfSequence.Should().BeTrue();
        encoder.MaskTokenId.Should().BeNull();
        encoder.SpecialTokenIds.Should().Contain([0, 1, 2]);
    }

    [Fact]
    public void A_pad_token_named_by_the_files_or_config_wins_over_the_end_of_sequence_token()
    {
        using var named = new TempDir();
        using var configured = new TempDir();
        ToyLlamaTokenizer.WriteTokenizerConfig(named.Path);
        File.WriteAllText(named.File("special_tokens_map.json"), """{"pad_token": "<unk>"}""");
        ToyLlamaTokenizer.WriteTokenizerJson(configured.Path);

        var fromFiles = (FromFilesTextEncoder)Json(named);
        var fromConfig = (FromFilesTextEncoder)TextEncoders.FromFolder(configured.Path, ToyLlamaTokenizer.Config(padTokenId: 0));

        fromFiles.PadTokenId.Should().Be(0);
        fromFiles.PadTokenIsEndOfSequence.Should().BeFalse();
        fromConfig.PadTokenId.Should().Be(0);
        fromConfig.PadTokenIsEndOfSequence.Should().BeFalse();
    }

    [Fact]
    public void No_pad_and_no_end_of_sequence_token_is_an_error_that_says_what_to_set()
    {
        using var dir = new TempDir();
        ToyLlamaTokenizer.WriteTokenizerJson(dir.Path);
        var config = Config with { EosTokenId = null };

        var act = () => TextEncoders.FromFolder(dir.Path, config);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("pad_token_id").And.Contain("tokenizer.json");
    }

    [Fact]
    public void An_empty_text_is_bos_alone()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);

        encoder.Encode("").InputIds.Should().Equal(1);
        encoder.Encode(null).InputIds.Should().Equal(1);
    }

    [Fact]
    public void A_llama_tokenizer_config_decides_bos_and_eos_as_llama_tokenizer_fast_does()
    {
        using var dir = new TempDir();
        ToyLlamaTokenizer.WriteTokenizerConfig(dir.Path, addEos: true);
        var encoder = Json(dir);

        // LlamaTokenizerFast rebuilds "<s>:0 $A:0 </s>:0" / "... <s>:1 $B:1 </s>:1" from add_bos_token / add_eos_token.
        encoder.Encode("hello").InputIds.Should().Equal(Ids("<s>", "▁hello", "</s>"));
        var pair = encoder.Encode("hello", "hello");
        pair.InputIds.Should().Equal(Ids("<s>", "▁hello", "</s>", "<s>", "▁hello", "</s>"));
        pair.TokenTypeIds.Should().Equal(0, 0, 0, 1, 1, 1);
    }

    [Fact]
    public void Tokenizer_model_gives_the_same_ids_as_tokenizer_json()
    {
        using var jsonDir = new TempDir();
        using var modelDir = new TempDir();
        var json = Json(jsonDir);
        var model = Model(modelDir);

        ((FromFilesTextEncoder)model).Format.Should().Be("SentencePiece BPE");
        ((FromFilesTextEncoder)model).Source.Should().EndWith("tokenizer.model");
        string[] texts = ["hello world", "€", "héllo", "hello</s>world", "Hi", "  hello  world ", "", "ww"];
        foreach (var text in texts)
        {
            model.Encode(text).Should().BeEquivalentTo(json.Encode(text), "text: {0}", text);
            model.Encode(text, "world").Should().BeEquivalentTo(json.Encode(text, "world"), "pair with: {0}", text);
        }
        model.PadTokenId.Should().Be(json.PadTokenId);
    }

    [Fact]
    public void Tokenizer_model_with_legacy_false_prefixes_only_the_start_of_the_text()
    {
        using var dir = new TempDir();
        ToyLlamaTokenizer.WriteTokenizerConfig(dir.Path, legacy: false);
        var encoder = Model(dir);

        encoder.Encode("hello</s>world").InputIds.Should().Equal(Ids("<s>", "▁hello", "</s>", "w", "or", "ld"));
    }

    [Fact]
    public void Tokenizer_json_wins_over_tokenizer_model()
    {
        using var dir = new TempDir();
        ToyLlamaTokenizer.WriteTokenizerModel(dir.Path);
        ToyLlamaTokenizer.WriteTokenizerJson(dir.Path, legacy: false);

        var encoder = (FromFilesTextEncoder)TextEncoders.FromFolder(dir.Path, Config);

        encoder.Source.Should().EndWith("tokenizer.json");
        // Only the Metaspace tokenizer.json leaves "world" after </s> without its ▁ (the model file is legacy).
        encoder.Encode("hello</s>world").InputIds.Should().Equal(Ids("<s>", "▁hello", "</s>", "w", "or", "ld"));
    }

    [Fact]
    public void Encoding_from_several_threads_gives_the_same_ids_as_one_thread()
    {
        using var llama = new TempDir();
        using var deberta = new TempDir();
        using var llama3 = new TempDir();
        using var spm = new TempDir();
        ToyLlamaTokenizer.WriteTokenizerModel(llama.Path);
        ToyDebertaTokenizer.WriteTokenizerJson(deberta.Path);
        ToyDebertaTokenizer.WriteSpmModel(spm.Path);
        ToyRegexByteLevelBpe.WriteTokenizerJson(llama3.Path, qwen2: false);
        var encoders = new[]
        {
            TextEncoders.FromFolder(llama.Path, Config), TextEncoders.FromFolder(deberta.Path, ToyDebertaTokenizer.Config()),
            TextEncoders.FromFolder(spm.Path, ToyDebertaTokenizer.Config()), TextEncoders.FromFolder(llama3.Path, ToyRegexByteLevelBpe.Config(qwen2: false)),
        };
        var texts = File.ReadLines(SharedData.Data("sst2", "dev.tsv")).Skip(1).Select(l => l.Split('\t')[1] + " héllo wörld 🙂 €").ToArray();

        foreach (var encoder in encoders)
        {
            var sequential = texts.Select(t => encoder.Encode(t).InputIds).ToArray();
            var parallel = new int[texts.Length][];
            Parallel.For(0, texts.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => parallel[i] = encoder.Encode(texts[i]).InputIds);
            for (int i = 0; i < texts.Length; i++) parallel[i].Should().Equal(sequential[i]);
        }
    }
}
