using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>One saved model (tiny BERT, fitted on a few SST-2 rows) that each test loads afresh.</summary>
public sealed class SavedSst2Model : IDisposable
{
    readonly TinyBertFolder _bert = new();
    readonly TempDir _dir = new();

    public SavedSst2Model()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Sst2("train.tsv", 0, 48));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(new LoraTextClassifierOptions
            {
                ModelPath = _bert.Path, Epochs = 1, BatchSize = 8, MaxSequenceLength = 48, Lora = new LoraOptions { Rank = 2, Alpha = 4 },
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        Path = _dir.File("model.zip");
        ml.Model.SaveWithLora(model, train.Schema, Path);
        PipelineStages.LoraStage(model).Dispose();
    }

    public string Path { get; }

    public ITransformer Load(MLContext ml) => ml.Model.LoadWithLora(Path, out _);

    public void Dispose()
    {
        _dir.Dispose();
        _bert.Dispose();
    }
}

/// <summary>
/// One loaded model serves many threads and PredictionEngines: disposing an engine never breaks the others or the
/// pipeline, the native model is freed only after its last user, and a freed model gives ObjectDisposedException.
/// </summary>
public class SharedScoringTests(SavedSst2Model saved) : IClassFixture<SavedSst2Model>
{
    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    static readonly List<TextData.LabeledText> Rows = TextData.Sst2("dev.tsv", 0, 40);

    static List<Prediction> ScoreOneByOne(MLContext ml, ITransformer model)
    {
        using var engine = ml.Model.CreatePredictionEngine<TextData.LabeledText, Prediction>(model);
        return Rows.Select(r => engine.Predict(r)).ToList();
    }

    static void ShouldEqual(Prediction actual, Prediction expected)
    {
        actual.PredictedLabel.Should().Be(expected.PredictedLabel);
        actual.Score.Should().Equal(expected.Score);
    }

    /// <summary>Transform scores rows in padded batches, which moves a score by a rounding step at most.</summary>
    static void ShouldMatch(Prediction actual, Prediction expected)
    {
        actual.PredictedLabel.Should().Be(expected.PredictedLabel);
        actual.Score.Zip(expected.Score, (a, e) => Math.Abs(a - e)).Max().Should().BeLessThan(1e-6f);
    }

    /// <summary>Runs <paramref name="body"/> on <paramref name="count"/> threads; returns what they threw.</summary>
    static List<Exception> OnThreads(int count, Action<int> body, Action? whileRunning = null)
    {
        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var threads = Enumerable.Range(0, count).Select(t => new Thread(() =>
        {
            try { body(t); }
            catch (Exception e) { errors.Add(e); }
        })).ToList();
        foreach (var thread in threads) thread.UnsafeStart();
        whileRunning?.Invoke();
        foreach (var thread in threads) thread.Join();
        return errors.ToList();
    }

    [Fact]
    public void Four_threads_creating_and_disposing_engines_at_random_score_as_one_thread_does()
    {
        var ml = new MLContext(seed: 1);
        var model = saved.Load(ml);
        var expected = ScoreOneByOne(ml, model);   // this engine is disposed too, before the threads start
        int predictions = 0, engines = 0;

        var errors = OnThreads(4, t =>
        {
            var random = new Random(100 + t);
            for (int round = 0; round < 20; round++)
            {
                var engine = ml.Model.CreatePredictionEngine<TextData.LabeledText, Prediction>(model);
                Interlocked.Increment(ref engines);
                int count = random.Next(1, 6);
                for (int i = 0; i < count; i++)
                {
                    int row = random.Next(Rows.Count);
                    ShouldEqual(engine.Predict(Rows[row]), expected[row]);
                    Interlocked.Increment(ref predictions);
                }
                engine.Dispose();   // owns the model (ML.NET's default): disposing it disposes the pipeline's stages
            }
        });

        errors.Should().BeEmpty();
        engines.Should().Be(80);
        predictions.Should().BeGreaterThan(80);
        var afterwards = ml.Data.CreateEnumerable<Prediction>(model.Transform(ml.Data.LoadFromEnumerable(Rows)), reuseRowObject: false).ToList();
        for (int i = 0; i < Rows.Count; i++) ShouldMatch(afterwards[i], expected[i]);
        PipelineStages.LoraStage(model).Dispose();
    }

    [Fact]
    public void Disposing_an_engine_leaves_the_pipeline_scoring()
    {
        var ml = new MLContext(seed: 1);
        var model = saved.Load(ml);
        var data = ml.Data.LoadFromEnumerable(Rows);
        var before = ml.Data.CreateEnumerable<Prediction>(model.Transform(data), reuseRowObject: false).ToList();

        ml.Model.CreatePredictionEngine<TextData.LabeledText, Prediction>(model).Dispose();

        var after = ml.Data.CreateEnumerable<Prediction>(model.Transform(data), reuseRowObject: false).ToList();
        for (int i = 0; i < Rows.Count; i++) ShouldEqual(after[i], before[i]);
        PipelineStages.LoraStage(model).Dispose();
    }

    [Fact]
    public void The_model_is_freed_after_its_last_user_and_then_refuses_work_with_ObjectDisposedException()
    {
        var ml = new MLContext(seed: 1);
        var model = saved.Load(ml);
        var lora = PipelineStages.LoraStage(model);
        var engine = ml.Model.CreatePredictionEngine<TextData.LabeledText, Prediction>(model);

        lora.Dispose();   // the pipeline's reference; the engine still holds one
        var stillScoring = engine.Predict(Rows[0]);
        engine.Dispose();   // the last reference

        stillScoring.Score.Should().HaveCount(2);
        var predict = () => ml.Model.CreatePredictionEngine<TextData.LabeledText, Prediction>(model);
        predict.Should().Throw<ObjectDisposedException>().WithMessage("*disposed*LoadWithLora*");
        var transform = () => model.Transform(ml.Data.LoadFromEnumerable(Rows));
        transform.Should().Throw<ObjectDisposedException>();
        var probabilities = () => lora.PredictProbabilities("any text");
        probabilities.Should().Throw<ObjectDisposedException>();
        lora.Dispose();   // more releases than references do nothing
    }

    [Fact]
    public void Disposing_the_model_while_threads_score_it_gives_them_ObjectDisposedException_never_a_crash()
    {
        var ml = new MLContext(seed: 1);
        var model = saved.Load(ml);
        var lora = PipelineStages.LoraStage(model);
        var started = new CountdownEvent(4);

        var errors = OnThreads(4, t =>
        {
            started.Signal();
            for (int i = 0; i < 10_000; i++) lora.PredictProbabilities(Rows[(t * 7 + i) % Rows.Count].Text);
        }, whileRunning: () =>
        {
            started.Wait();
            Thread.Sleep(200);
            lora.Dispose();
        });

        errors.Should().HaveCount(4, "every thread was still scoring when the model was disposed");
        errors.Should().AllBeOfType<ObjectDisposedException>();
    }

    sealed class EnginePolicy(MLContext ml, ITransformer model) : PooledObjectPolicy<PredictionEngine<TextData.LabeledText, Prediction>>
    {
        public int Created;

        public override PredictionEngine<TextData.LabeledText, Prediction> Create()
        {
            Interlocked.Increment(ref Created);
            return ml.Model.CreatePredictionEngine<TextData.LabeledText, Prediction>(model);
        }

        public override bool Return(PredictionEngine<TextData.LabeledText, Prediction> engine) => true;
    }

    [Fact]
    public void A_pool_of_engines_that_disposes_its_surplus_keeps_the_model_alive()
    {
        // What ASP.NET Core's PredictionEnginePool does: engines come from an ObjectPool, which disposes the ones it
        // does not keep when they are returned.
        var ml = new MLContext(seed: 1);
        var model = saved.Load(ml);
        var expected = ScoreOneByOne(ml, model);
        var policy = new EnginePolicy(ml, model);
        var pool = new DefaultObjectPoolProvider { MaximumRetained = 1 }.Create(policy);
        pool.Should().BeAssignableTo<IDisposable>("for disposable objects the pool disposes what it does not retain");

        var errors = OnThreads(4, t =>
        {
            for (int i = 0; i < 40; i++)
            {
                var engine = pool.Get();
                int row = (t * 11 + i) % Rows.Count;
                ShouldEqual(engine.Predict(Rows[row]), expected[row]);
                pool.Return(engine);
            }
        });
        ((IDisposable)pool).Dispose();

        errors.Should().BeEmpty();
        policy.Created.Should().BeGreaterThan(1, "several engines were in use at once, and the surplus was disposed");
        var afterwards = ScoreOneByOne(ml, model);
        for (int i = 0; i < Rows.Count; i++) ShouldEqual(afterwards[i], expected[i]);
        PipelineStages.LoraStage(model).Dispose();
    }

    [Fact]
    public void A_NaN_score_is_an_error_not_a_prediction()
    {
        var ml = new MLContext(seed: 1);
        var model = saved.Load(ml);
        var lora = PipelineStages.LoraStage(model);
        using (torch.no_grad())
            lora.Model.named_parameters().First(p => p.name == "classifier.weight").parameter.fill_(float.NaN);

        var transform = () => ml.Data.CreateEnumerable<Prediction>(model.Transform(ml.Data.LoadFromEnumerable(Rows)), reuseRowObject: false).ToList();
        var thrown = transform.Should().Throw<Exception>().Which;
        PipelineExceptions.Unwrap(thrown).Should().BeOfType<NonFiniteScoreException>().Which.Message.Should().Contain("non-finite score (NaN)");
        using var engine = ml.Model.CreatePredictionEngine<TextData.LabeledText, Prediction>(model);
        var predict = () => engine.Predict(Rows[0]);
        predict.Should().Throw<NonFiniteScoreException>();
        lora.Dispose();
    }

    sealed class ScoreOnly
    {
        public float[] Score { get; set; } = [];
    }

    sealed class Throwing
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    static IEnumerable<Throwing> RowsThatFailAt(int failAt)
    {
        for (int i = 0; ; i++)
        {
            if (i == failAt) throw new InvalidDataException($"data.jsonl: line {i + 1} is not valid JSON");
            yield return new Throwing { Label = "1", Text = Rows[i % Rows.Count].Text };
        }
    }

    [Fact]
    public void A_data_error_raised_while_scoring_reaches_the_caller_as_it_was_raised()
    {
        var ml = new MLContext(seed: 1);
        var model = saved.Load(ml);
        var lora = PipelineStages.LoraStage(model);
        var data = ml.Data.LoadFromEnumerable(RowsThatFailAt(300));
        var throughLoraStage = PipelineStages.TransformThroughLoraStage(model, data);   // ML.NET's MapValueToKey reads the rows on a worker thread

        var readLoraStage = () => ml.Data.CreateEnumerable<ScoreOnly>(throughLoraStage, reuseRowObject: false).Count();
        var readPipeline = () => ml.Data.CreateEnumerable<Prediction>(model.Transform(data), reuseRowObject: false).Count();

        readLoraStage.Should().Throw<InvalidDataException>().WithMessage("data.jsonl: line 301 is not valid JSON");
        var wrapped = readPipeline.Should().Throw<InvalidOperationException>("MapKeyToValue after the LoRA stage wraps what it reads").Which;
        PipelineExceptions.Unwrap(wrapped).Should().BeOfType<InvalidDataException>().Which.Message.Should().Be("data.jsonl: line 301 is not valid JSON");
        lora.Dispose();
    }
}
