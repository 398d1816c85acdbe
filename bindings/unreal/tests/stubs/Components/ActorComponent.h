// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// Components/ActorComponent.h (Engine module), with FTickFunction (Engine/EngineBaseTypes.h) and EEndPlayReason
// (Engine/EngineTypes.h).

#pragma once

#include "UObject/Object.h"

namespace EEndPlayReason
{
	enum Type : int
	{
		Destroyed,
		LevelTransition,
		EndPlayInEditor,
		RemovedFromWorld,
		Quit,
	};
}

struct FTickFunction
{
	uint8 bCanEverTick : 1;
};

struct FActorComponentTickFunction : public FTickFunction
{
};

class UActorComponent : public UObject
{
public:
	// GENERATED_BODY() gives each reflected class "typedef <its base> Super;" (DECLARE_CLASS in the generated
	// header). The stand-in GENERATED_BODY() is empty, so a direct subclass inherits this one instead.
	using Super = UActorComponent;

	UActorComponent(const FObjectInitializer& ObjectInitializer = FObjectInitializer::Get());

	FActorComponentTickFunction PrimaryComponentTick;

	virtual void BeginPlay();
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason);
	virtual UWorld* GetWorld() const override final;
};
