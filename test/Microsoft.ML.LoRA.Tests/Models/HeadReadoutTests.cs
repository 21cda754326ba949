using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>
/// The last layer computes only the row the head reads (HeadReadout): that row, and every parameter's gradient through
/// it, equal what the whole layer gives.
/// </summary>
public class HeadReadoutTests
{
    const int Batch = 4, Seq = 10;

    /// <summary>Row 0 all real, row 1 right-padded after 6 tokens, row 2 left-padded (3 pads), row 3 a single token.</summary>
    static Tensor MixedPadding()
    {
        var mask = torch.ones(Batch, Seq, ScalarType.Int64);
        mask[1, TensorIndex.Slice(6)] = torch.tensor(0L);
        mask[2, TensorIndex.Slice(0, 3)] = torch.tensor(0L);
        mask[3, TensorIndex.Slice(1)] = torch.tensor(0L);
        return mask;
    }

    static TransformerConfig FixtureConfig(string family) =>
        TransformerConfig.Load(Path.Combine(SharedData.Fixture(family), "config.json"));

    /// <summary>
    /// The family's fixture-sized model without a head, seeded with 1, in eval mode. The linear layers whose names
    /// <paramref name="adapted"/> accepts get an unmerged adapter with a non-zero B, as if trained.
    /// </summary>
    static nn.Module<ModelInput, Tensor> SeededModel(string family, Func<string, bool>? adapted = null)
    {
        var config = FixtureConfig(family);
        lock (TorchRandomLock.Sync)   // seeding and building together: the weights are drawn from the global generator
        {
            torch.manual_seed(1);
            nn.Module<ModelInput, Tensor> model = family switch
            {
                "gpt2" => new Gpt2Model(config),
                "distilbert" => new DistilBertModel(config),
                _ => new BertModel(config, addPooler: false, paddingIdxForPositions: family == "roberta" ? 1 : null),
            };
            foreach (var (_, layer) in LoraInjector.LinearLayers(model).Where(l => adapted?.Invoke(l.Key) == true))
            {
                layer.AttachAdapter(4, 8, 0.0, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform);
                using (torch.no_grad()) layer.LoraB.normal_(0, 0.5, generator: new Generator(5));
            }
            model.eval();
            return model;
        }
    }

    /// <summary>An encoder's first-token state computed through its readout ([batch, 1, hidden]).</summary>
    static Tensor FirstTokenState(nn.Module model, ModelInput input) => model switch
    {
        DistilBertModel d => d.FirstTokenState(input),
        BertModel b => b.FirstTokenState(input),
        _ => throw new ArgumentException($"{model.GetType().Name} is not an encoder", nameof(model)),
    };

    /// <summary>Gather indices of each <see cref="MixedPadding"/> row's last real token, [batch, 1, hidden].</summary>
    static Tensor LastRealRows(long hidden) =>
        torch.tensor(new long[] { Seq - 1, 5, Seq - 1, 0 }).view(Batch, 1, 1).expand(-1, 1, hidden);

    /// <summary>Runs <paramref name="readRow"/> ([batch, 1, hidden]) into a fixed random loss; the row and every parameter's gradient.</summary>
    static (float[] Row, Dictionary<string, float[]> Grads) RowAndGradients(nn.Module model, Func<Tensor> readRow)
    {
        model.zero_grad();
        var row = readRow();
        row.shape.Should().Equal(Batch, 1, row.shape[2]);
        var weights = torch.randn(row.shape, generator: new Generator(7));
        row.mul(weights).sum().backward();
        var grads = model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.data<float>().ToArray());
        return (row.detach().data<float>().ToArray(), grads);
    }

    static void ShouldAgree((float[] Row, Dictionary<string, float[]> Grads) readout, (float[] Row, Dictionary<string, float[]> Grads) whole, string lastLayerWeight)
    {
        readout.Row.Zip(whole.Row, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f);
        readout.Grads.Keys.Should().BeEquivalentTo(whole.Grads.Keys).And.Contain(lastLayerWeight);
        foreach (var (name, grad) in whole.Grads)
        {
            float scale = Math.Max(1f, grad.Max(Math.Abs));   // float sums in another order: relative to the gradient's size
            readout.Grads[name].Zip(grad, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f * scale, name);
        }
    }

    public static IEnumerable<object[]> Encoders => new[] { new object[] { "bert" }, new object[] { "roberta" }, new object[] { "distilbert" } };

    [Theory]
    [MemberData(nameof(Encoders))]
    public void An_encoders_first_token_state_and_its_gradients_equal_those_of_the_whole_last_layer(string family)
    {
        var config = FixtureConfig(family);
        var ids = torch.randint(5, config.VocabSize, new long[] { Batch, Seq }, generator: new Generator(3));
        var input = new ModelInput(ids, MixedPadding());
        using var model = SeededModel(family);
        string lastWeight = family == "distilbert"
            ? $"transformer.layer.{config.NumLayers - 1}.ffn.lin2.weight"
            : $"encoder.layer.{config.NumLayers - 1}.output.dense.weight";

        var whole = RowAndGradients(model, () => model.forward(input).narrow(1, 0, 1));
        var readout = RowAndGradients(model, () => FirstTokenState(model, input));

        ShouldAgree(readout, whole, lastWeight);
    }

    [Theory]
    [MemberData(nameof(Encoders))]
    public void In_inference_an_encoders_first_token_state_with_keys_and_values_folded_equals_the_whole_last_layers(string family)
    {
        var config = FixtureConfig(family);
        var ids = torch.randint(5, config.VocabSize, new long[] { Batch, Seq }, generator: new Generator(3));
        var input = new ModelInput(ids, MixedPadding());
        // Unmerged adapters on the key and value projections too: the folded products must include them.
        using var model = SeededModel(family, name => name.EndsWith("key") || name.EndsWith("value") || name.EndsWith("k_lin") || name.EndsWith("v_lin"));

        using var noGrad = torch.no_grad();
        using var whole = model.forward(input);
        using var wholeFirst = whole.narrow(1, 0, 1);
        using var folded = FirstTokenState(model, input);

        folded.shape.Should().Equal(wholeFirst.shape);
        using var diff = (folded - wholeFirst).abs().max();
        diff.item<float>().Should().BeLessThan(1e-5f);
    }

    [Fact]
    public void In_inference_gpt2s_last_real_token_state_with_keys_and_values_folded_equals_the_whole_last_blocks()
    {
        var config = FixtureConfig("gpt2");
        // c_attn's unmerged adapter changes its key and value thirds too, which the fold must include.
        using var model = (Gpt2Model)SeededModel("gpt2", name => name.EndsWith("c_attn"));
        var ids = torch.randint(5, config.VocabSize, new long[] { Batch, Seq }, generator: new Generator(3));
        var mask = MixedPadding();
        var input = new ModelInput(ids, mask);
        var lastReal = LastRealRows(config.HiddenSize);

        using var noGrad = torch.no_grad();
        using var whole = model.forward(input);
        using var wholeRow = whole.gather(1, lastReal);
        using var read = HeadReadout.LastRealToken(mask);
        using var folded = model.Forward(input, read);

        folded.shape.Should().Equal(wholeRow.shape);
        using var diff = (folded - wholeRow).abs().max();
        diff.item<float>().Should().BeLessThan(1e-5f);
    }

    [Fact]
    public void Attention_of_a_few_rows_with_keys_and_values_folded_equals_attention_over_projected_keys_and_values()
    {
        const int heads = 4, hidden = 32, seq = 9, batch = 3;
        var g = new Generator(11);
        using var x = torch.randn(new long[] { batch, seq, hidden }, generator: g);
        using var q = torch.randn(new long[] { batch, 2, hidden }, generator: g);
        using var wk = torch.randn(new long[] { hidden, hidden }, generator: g);
        using var bk = torch.randn(new long[] { hidden }, generator: g);
        using var wv = torch.randn(new long[] { hidden, hidden }, generator: g);
        using var bv = torch.randn(new long[] { hidden }, generator: g);
        using var mask = torch.ones(batch, seq, ScalarType.Int64);
        mask[1, TensorIndex.Slice(5)] = torch.tensor(0L);
        mask[2, TensorIndex.Slice(0, 2)] = torch.tensor(0L);
        using var keyMask = Attention.KeyMask(mask);
        using var k = torch.nn.functional.linear(x, wk, bk);
        using var v = torch.nn.functional.linear(x, wv, bv);

        using var expected = Attention.Run(q, k, v, heads, keyMask, 0.0, training: false);
        using var folded = Attention.ReadRows(q, x, wk, wv, bv, heads, keyMask);

        folded.shape.Should().Equal(batch, 2, hidden);
        using var diff = (folded - expected).abs().max();
        using var size = expected.abs().max();
        diff.item<float>().Should().BeLessThan(1e-5f * Math.Max(1f, size.item<float>()));
    }

    [Fact]
    public void Gpt2s_last_real_token_state_and_its_gradients_equal_those_of_the_whole_last_block_with_left_and_right_padding()
    {
        var config = FixtureConfig("gpt2");
        using var model = (Gpt2Model)SeededModel("gpt2");
        var ids = torch.randint(5, config.VocabSize, new long[] { Batch, Seq }, generator: new Generator(3));
        var mask = MixedPadding();
        var input = new ModelInput(ids, mask);
        var lastReal = LastRealRows(config.HiddenSize);

        var whole = RowAndGradients(model, () => model.forward(input).gather(1, lastReal));
        var readout = RowAndGradients(model, () =>
        {
            using var read = HeadReadout.LastRealToken(mask);
            return model.Forward(input, read);
        });

        ShouldAgree(readout, whole, $"h.{config.NumLayers - 1}.mlp.c_proj.weight");
    }

    [Fact]
    public void The_last_real_token_attends_causally_to_the_real_tokens_before_it()
    {
        using var read = HeadReadout.LastRealToken(MixedPadding());

        var visible = read.Mask!.view(Batch, Seq).to_type(ScalarType.Int32).data<int>().ToArray();

        visible.Should().Equal(
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 0, 0, 0, 0,
            0, 0, 0, 1, 1, 1, 1, 1, 1, 1,
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }

    [Fact]
    public void A_stack_runs_every_layer_whole_except_the_last_which_computes_only_the_read_rows()
    {
        var stack = new LayerStack<RecordingLayer>(3, () => new RecordingLayer());
        var x = torch.randn(new long[] { Batch, Seq, 8 }, generator: new Generator(2));   // never the global generator: concurrent fits are seeded from it
        using var readout = HeadReadout.FirstToken();

        using var result = stack.Run(x, mask: null, readout);

        stack[0].Calls.Should().Equal("attend [4, 10, 8] of [4, 10, 8]", "feed-forward [4, 10, 8]");
        stack[1].Calls.Should().Equal("attend [4, 10, 8] of [4, 10, 8]", "feed-forward [4, 10, 8]");
        stack[2].Calls.Should().Equal("attend [4, 1, 8] of [4, 10, 8]", "feed-forward [4, 1, 8]");
        result.shape.Should().Equal(Batch, 1, 8);
        stack.Dispose();
    }

    /// <summary>Adds one in each half and records how it was called.</summary>
    sealed class RecordingLayer() : TransformerLayer("recording", feedForwardWidth: 8)
    {
        public List<string> Calls { get; } = new();

        static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";

        protected internal override Tensor Attend(Tensor rows, Tensor x, Tensor? mask)
        {
            Calls.Add($"attend {Shape(rows)} of {Shape(x)}");
            return rows.add(1);
        }

        protected internal override Tensor FeedForward(Tensor attended)
        {
            Calls.Add($"feed-forward {Shape(attended)}");
            return attended.add(1);
        }
    }
}
