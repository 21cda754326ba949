using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Export;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora export-onnx --model RUN_DIR/model.zip --output DIR [--opset 17] [--precision fp32|fp16|int8]</c>: writes
/// the model with its adapters merged as DIR/model.onnx, with the tokenizer files, config.json and lora-onnx.json
/// beside it, for scoring with ONNX Runtime and no libtorch (Microsoft.ML.LoRA.Onnx; docs/deployment.md).
/// </summary>
internal sealed class ExportOnnxCommand : CliCommand
{
    readonly SavedModelOptionSet _model = new();
    readonly Option<string> _output = new("--output", "-o") { Description = "Folder to write model.onnx, the tokenizer and lora-onnx.json to", HelpName = "DIR", Required = true };
    readonly Option<int> _opset = new("--opset")
    {
        Description = $"ONNX opset of the graph ({OnnxExport.MinOpset} to {OnnxExport.MaxOpset}; 20 and later write GELU as the Gelu operator)",
        HelpName = "N", DefaultValueFactory = _ => OnnxExport.MinOpset,
    };
    readonly Option<string> _precision = new Option<string>("--precision")
    {
        Description = "Weights of the exported graph: fp32 (exact), fp16 (stored as float16, half the file, widened to fp32 when " +
                      "loaded) or int8 (linear layers' weights int8 per output column, activations quantized per call: dynamic quantization)",
        HelpName = "fp32|fp16|int8", DefaultValueFactory = _ => "fp32",
    }.AcceptOnlyFromAmong("fp32", "fp16", "int8");

    readonly Option<bool> _externalData = new("--external-data")
    {
        Description = "Store the weights in model.onnx.data beside model.onnx (ONNX external data) [default: only when they " +
                      "exceed the 2 GB a single model.onnx holds]",
    };

    public override string Name => "export-onnx";

    public override string Description =>
        "Write a saved model, adapters merged, as an ONNX graph with its tokenizer and labels, for scoring with ONNX Runtime " +
        "and no libtorch (Microsoft.ML.LoRA.Onnx).";

    protected override void Configure(Command command)
    {
        _model.AddTo(command);
        command.Options.Add(_output);
        command.Options.Add(_opset);
        command.Options.Add(_precision);
        command.Options.Add(_externalData);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var options = new OnnxExportOptions
        {
            Opset = parseResult.GetValue(_opset),
            Precision = parseResult.GetValue(_precision) switch { "int8" => OnnxPrecision.Int8, "fp16" => OnnxPrecision.Float16, _ => OnnxPrecision.Float32 },
            ExternalData = parseResult.GetValue(_externalData) ? true : null,
        };
        OnnxExport.CheckOptions(options);   // before the model loads
        var model = _model.Load(new MLContext(), parseResult, out _);
        try
        {
            var folder = parseResult.GetValue(_output)!;
            var result = OnnxExport.Export(model, folder, options);
            context.Out.WriteLine($"Wrote {result.ModelPath} ({OnnxExport.PrecisionName(options.Precision)}, opset {options.Opset}, " +
                $"{result.ModelBytes / 1048576.0:0.0} MB{(result.ExternalDataPath is { } data ? $", weights in {Path.GetFileName(data)}" : "")}; " +
                $"inputs {string.Join(", ", result.Inputs)}; {result.Labels.Count} labels) " +
                $"with {(result.TokenizerFiles.Count > 0 ? string.Join(", ", result.TokenizerFiles) : "no tokenizer files")}, " +
                $"{OnnxExport.ConfigFileName} and {OnnxExport.DescriptionFileName}.");
            return Task.FromResult(ExitCodes.Success);
        }
        finally
        {
            SavedModelOptionSet.Dispose(model);
        }
    }
}
