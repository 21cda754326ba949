using Microsoft.ML.LoRA.Adaptation;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Adaptation;

/// <summary>Each family's language model has Hugging Face's head names and tying, and loads a checkpoint's head.</summary>
public class LanguageModelTests
{
    static double Loss(LanguageModel model, ITextEncoder encoder, IEnumerable<string> texts)
    {
        var masking = model.Objective == LanguageModelObjective.MaskedLanguageModel
            ? new MaskedTokenSelection(0.15, encoder.MaskTokenId!.Value, model.Config.VocabSize, encoder.SpecialTokenIds)
            : null;
        var trainer = new LanguageModelTrainer(model, new DomainAdaptationOptions(), encoder.PadTokenId, masking);
        return trainer.Evaluate(texts.Select(t => encoder.Encode(t)).ToList(), maskSeed: 11);
    }

    [Fact]
    public void The_pretrained_head_predicts_held_out_text_far_better_than_random_weights()
    {
        var folder = CheckpointFolder.Open(BertTinyMlm.Path);
        var encoder = TextEncoders.FromFolder(folder.Directory, folder.Config, 128);
        var texts = BertTinyMlm.Sst2Dev(200);
        var messages = new List<string>();
        var (pretrained, report) = LanguageModelCheckpoint.Load(folder, messages.Add);
        using var _ = pretrained;
        using var random = LanguageModelFactory.Create(folder.Config);

        double pretrainedLoss = Loss(pretrained, encoder, texts);
        double randomLoss = Loss(random, encoder, texts);

        report.CreatedHead.Should().BeFalse("bert-tiny-mlm-en holds cls.predictions.*");
        report.KeptPooler.Should().BeFalse("it has no pooler");
        messages.Should().BeEmpty();
        randomLoss.Should().BeGreaterThan(10.0, "random weights spread over 30,522 tokens: ln 30522 = 10.3");
        pretrainedLoss.Should().BeLessThan(7.0, "the model reached 6.2 on its pre-training text; a head loaded without its tied decoder or bias would not");
    }

    [Theory]
    [InlineData("bert", "BertForMaskedLM", new[] { "cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight", "cls.predictions.bias" }, "cls.predictions.decoder")]
    [InlineData("distilbert", "DistilBertForMaskedLM", new[] { "vocab_transform.weight", "vocab_layer_norm.bias", "vocab_projector.bias" }, "vocab_projector.weight")]
    [InlineData("roberta", "RobertaForMaskedLM", new[] { "lm_head.dense.weight", "lm_head.layer_norm.weight", "lm_head.bias" }, "lm_head.decoder")]
    [InlineData("gpt2", "GPT2LMHeadModel", new string[0], "lm_head")]
    public void A_checkpoint_without_the_head_gets_one_with_hugging_face_names_and_a_tied_decoder(string family, string architecture, string[] head, string tied)
    {
        using var dir = new TempDir();
        var folder = CheckpointFolder.Open(TinyCheckpoint.Create(family, dir.File(family), seed: 2));
        var messages = new List<string>();

        var (model, report) = LanguageModelCheckpoint.Load(folder, messages.Add);
        using var _ = model;

        model.Architecture.Should().Be(architecture);
        var names = model.named_parameters().Select(p => p.name).ToList();
        if (head.Length > 0) names.Should().Contain(head);
        names.Should().NotContain(n => n.StartsWith(tied + ".", StringComparison.Ordinal) || n == tied + ".weight", "the projection onto the vocabulary is the word embeddings");
        report.CreatedHead.Should().Be(head.Length > 0);
        if (head.Length > 0) messages.Should().Contain(m => m.Contains($"no {architecture} head") && m.Contains("created"));
        else messages.Should().BeEmpty("GPT-2's head is its token embeddings");
        using (torch.no_grad())
        {
            var norm = model.named_parameters().FirstOrDefault(p => p.name.Contains("LayerNorm.weight") && p.name.StartsWith("cls") || p.name is "vocab_layer_norm.weight" or "lm_head.layer_norm.weight");
            if (norm.parameter is not null) norm.parameter.data<float>().ToArray().Should().OnlyContain(v => v == 1f, "a new LayerNorm starts at 1");
        }
    }

    [Fact]
    public void Logits_are_the_transformed_state_times_the_word_embeddings_plus_the_head_bias()
    {
        var folder = CheckpointFolder.Open(BertTinyMlm.Path);
        var (model, _) = LanguageModelCheckpoint.Load(folder);
        using var _m = model;
        model.eval();
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        using var scope = torch.NewDisposeScope();
        using var grad = torch.no_grad();
        var hidden = torch.randn(5, 128, generator: new torch.Generator(3));

        var logits = model.Logits(hidden);

        var dense = torch.nn.functional.linear(hidden, p["cls.predictions.transform.dense.weight"], p["cls.predictions.transform.dense.bias"]);
        var activated = torch.nn.functional.gelu(dense);
        var normed = torch.nn.functional.layer_norm(activated, new long[] { 128 }, p["cls.predictions.transform.LayerNorm.weight"], p["cls.predictions.transform.LayerNorm.bias"], 1e-12);
        var expected = normed.matmul(p["bert.embeddings.word_embeddings.weight"].t()).add(p["cls.predictions.bias"]);
        logits.shape.Should().Equal(5, 30522);
        (logits - expected).abs().max().item<float>().Should().BeLessThan(1e-4f);
    }

    [Fact]
    public void A_bert_checkpoint_with_a_pooler_keeps_it()
    {
        using var dir = new TempDir();
        var folder = CheckpointFolder.Open(TinyCheckpoint.Bert(dir.File("bert"), seed: 4));

        var (model, report) = LanguageModelCheckpoint.Load(folder);
        using var _ = model;

        report.KeptPooler.Should().BeTrue();
        using var weights = folder.OpenWeights();
        using var stored = weights.ReadFloat32("bert.pooler.dense.weight");
        var loaded = model.named_parameters().Single(p => p.name == "bert.pooler.dense.weight").parameter;
        loaded.eq(stored).all().item<bool>().Should().BeTrue();
    }
}
