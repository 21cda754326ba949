[assembly: Microsoft.ML.LoRA.Tests.Support.TorchScopePerTest]
